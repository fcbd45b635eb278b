#include "formats/hf/quant_config.h"

#include <filesystem>

namespace ember::hf {
namespace {

using nlohmann::json;

Status read_string_list(const JsonFields& f, std::string_view key, std::vector<std::string>& out) {
  const json* v = f.find(key);
  if (v == nullptr) return {};
  if (!v->is_array()) return f.bad(key, "is not a list of module names");
  for (const json& s : *v) {
    if (!s.is_string()) return f.bad(key, "holds " + json_summary(s) + ", not a module name");
    out.push_back(s.get<std::string>());
  }
  return {};
}

// config.json quantization_config with quant_method "compressed-tensors".
Expected<QuantConfig> compressed_tensors(const JsonFields& f) {
  QuantConfig q;
  q.source = f.file();
  auto format = f.string_or("format", "");
  if (!format) return format.status();
  q.name = *format;
  if (const json* groups = f.find("config_groups"); groups != nullptr && groups->is_object())
    for (const auto& [group, g] : groups->items())
      if (g.is_object() && g.contains("format") && g["format"].is_string()) {
        const std::string gf = g["format"].get<std::string>();
        if (q.name.empty() || q.name == "mixed-precision") q.name = gf;
        else if (gf != q.name)
          return f.unsupported("config_groups", "mixes formats '" + q.name + "' and '" + gf + "'");
      }
  q.kind = q.name == "nvfp4-pack-quantized"   ? WeightQuant::nvfp4_compressed_tensors
           : q.name == "mxfp4-pack-quantized" ? WeightQuant::mxfp4_compressed_tensors
                                              : WeightQuant::other;
  EMBER_RETURN_IF_ERROR(read_string_list(f, "ignore", q.ignore));
  return q;
}

// The ModelOpt "quantization" object (hf_quant_config.json) or quantization_config.
Expected<QuantConfig> modelopt(const JsonFields& f) {
  QuantConfig q;
  q.source = f.file();
  auto algo = f.string_or("quant_algo", "");
  if (!algo) return algo.status();
  q.name = *algo;
  q.svd = *algo == "NVFP4_SVD";
  q.kind = (*algo == "NVFP4" || q.svd) ? WeightQuant::nvfp4_modelopt : WeightQuant::other;
  EMBER_RETURN_IF_ERROR(read_string_list(f, "exclude_modules", q.ignore));
  EMBER_RETURN_IF_ERROR(read_string_list(f, "ignore", q.ignore));
  return q;
}

}  // namespace

Expected<QuantConfig> read_quant_config(const Config& config) {
  const JsonFields root(config.root, config.path);
  if (const json* qc = root.find("quantization_config")) {
    if (!qc->is_object()) return root.bad("quantization_config", "is not an object");
    const JsonFields f = root.sub(*qc, "quantization_config");
    auto method = f.string_or("quant_method", "");
    if (!method) return method.status();
    if (*method == "compressed-tensors") return compressed_tensors(f);
    if (*method == "modelopt") return modelopt(f);
    QuantConfig q;
    q.kind = WeightQuant::other;
    q.name = *method;
    q.source = config.path;
    return q;
  }
  const std::string path = (std::filesystem::path(config.dir) / "hf_quant_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return QuantConfig{};
  auto doc = read_json_file(path);
  if (!doc) return doc.status();
  const JsonFields top(*doc, path);
  const json* quant = top.find("quantization");
  if (quant == nullptr || !quant->is_object()) return top.bad("quantization", "is missing or not an object");
  return modelopt(top.sub(*quant, "quantization"));
}

}  // namespace ember::hf
