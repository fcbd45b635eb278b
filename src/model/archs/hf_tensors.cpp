// HfTensors: safetensors tensors under the GGUF names weights.cpp reads.
#include <algorithm>
#include <cstring>

#include "core/half.h"
#include "model/archs/hf.h"

namespace ember::model {
namespace {

namespace st = safetensors;

// Where the decoder's tensors live: causal LMs under "model.", Gemma 3's multimodal wrapper
// under "model.language_model." (transformers >= 4.52) or "language_model.model." (older).
constexpr const char* kPrefixes[] = {"model.", "model.language_model.", "language_model.model.", ""};
constexpr const char* kLmHeads[] = {"lm_head.weight", "language_model.lm_head.weight"};

std::optional<quant::Type> direct_type(st::Dtype d) {
  switch (d) {
    case st::Dtype::F32: return quant::Type::F32;
    case st::Dtype::F16: return quant::Type::F16;
    case st::Dtype::BF16: return quant::Type::BF16;
    default: return std::nullopt;
  }
}

// "layers.12.self_attn.q_proj.weight" -> (12, "self_attn.q_proj", "weight");
// "layers.3.layer_scalar" -> (3, "layer_scalar", "").
bool split_layer_name(std::string_view rest, int64_t* il, std::string_view* module, std::string_view* suffix) {
  if (!rest.starts_with("layers.")) return false;
  rest.remove_prefix(7);
  size_t i = 0;
  int64_t n = 0;
  while (i < rest.size() && i < 7 && rest[i] >= '0' && rest[i] <= '9') n = n * 10 + (rest[i++] - '0');
  if (i == 0 || i >= rest.size() || rest[i] != '.') return false;
  rest.remove_prefix(i + 1);
  const size_t dot = rest.rfind('.');
  *il = n;
  *module = dot == std::string_view::npos ? rest : rest.substr(0, dot);
  *suffix = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  return true;
}

// `name` matches `pattern` where a "*" in the pattern stands for a decimal number
// (an expert index); *number receives it ("" when the pattern has no "*").
bool match_pattern(std::string_view pattern, std::string_view name, std::string_view* number) {
  *number = {};
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == name;
  const std::string_view head = pattern.substr(0, star), tail = pattern.substr(star + 1);
  if (name.size() <= head.size() + tail.size() || !name.starts_with(head) || !name.ends_with(tail)) return false;
  const std::string_view digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  *number = digits;
  return true;
}

std::string fill_pattern(std::string_view pattern, std::string_view number) {
  std::string s(pattern);
  if (const size_t star = s.find('*'); star != std::string::npos) s.replace(star, 1, number);
  return s;
}

// GGUF name of layer il's checkpoint tensor "<module>.<suffix>" (empty: not the decoder's).
// A table entry maps a module ("self_attn.q_proj" -> "attn_q", suffix weight or bias kept),
// or, when its GGUF side has a ".", one whole tensor ("router.scale" -> "ffn_gate_inp.scale",
// "mlp.experts.gate_up_proj" -> "ffn_gate_up_exps.weight"); "*" stands for an expert index.
std::string layer_tensor_name(const HfLayerNames& names, int64_t il, std::string_view module, std::string_view suffix) {
  const std::string full = suffix.empty() ? std::string(module) : fmt::format("{}.{}", module, suffix);
  std::string_view number;
  for (const auto& [hf, g] : names) {
    if (g.find('.') != std::string::npos && g.find('*') == std::string::npos) {
      if (match_pattern(hf, full, &number)) return fmt::format("blk.{}.{}", il, fill_pattern(g, number));
    } else if ((suffix == "weight" || suffix == "bias") && match_pattern(hf, module, &number)) {
      return fmt::format("blk.{}.{}.{}", il, fill_pattern(g, number), suffix);
    }
  }
  return {};
}

}  // namespace

Expected<std::unique_ptr<HfTensors>> HfTensors::build(st::Checkpoint checkpoint, const HfModelSpec& spec,
                                                      const hf::QuantConfig& quant) {
  auto t = std::unique_ptr<HfTensors>(new HfTensors());
  t->checkpoint_ = std::move(checkpoint);
  t->quant_ = quant;
  const st::Checkpoint& c = t->checkpoint_;
  const char* prefix = nullptr;
  for (const char* p : kPrefixes)
    if (c.find_tensor(std::string(p) + "embed_tokens.weight") != nullptr) {
      prefix = p;
      break;
    }
  if (prefix == nullptr)
    return make_error(ErrorKind::invalid_file,
                      "{}: no embedding tensor (model.embed_tokens.weight, model.language_model.embed_tokens.weight "
                      "or language_model.model.embed_tokens.weight)", c.name());
  t->prefix_ = prefix;
  t->layer_names_ = spec.layer_names;
  for (const std::string& full_name : c.tensor_names()) {
    // compressed-tensors stores a quantized "<module>.weight" as "<module>.weight_packed".
    const bool ct_packed = full_name.ends_with(".weight_packed");
    const std::string name = ct_packed ? full_name.substr(0, full_name.size() - 7) : full_name;
    std::string gguf;
    const std::string_view rest = std::string_view(name).substr(name.starts_with(prefix) ? strlen(prefix) : 0);
    int64_t il = 0;
    std::string_view module, suffix;
    if (name == kLmHeads[0] || name == kLmHeads[1]) {
      if (!spec.tied_embeddings) gguf = "output.weight";
    } else if (!name.starts_with(prefix)) {
    } else if (rest == "embed_tokens.weight") {
      gguf = "token_embd.weight";
    } else if (rest == "norm.weight") {
      gguf = "output_norm.weight";
    } else if (split_layer_name(rest, &il, &module, &suffix) && il < spec.spec.n_layers) {
      gguf = layer_tensor_name(spec.layer_names, il, module, suffix);
    }
    if (gguf.empty()) {
      ++t->n_ignored_;
      continue;
    }
    t->hf_names_[gguf] = full_name;
    const st::TensorInfo& info = *c.find_tensor(full_name);
    const std::string hf_module = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : "";
    const bool modelopt_packed = !ct_packed && !hf_module.empty() && info.dtype == st::Dtype::U8 &&
                                 c.find_tensor(hf_module + ".weight_scale") != nullptr;
    if (ct_packed || modelopt_packed)
      EMBER_RETURN_IF_ERROR(t->add_nvfp4(gguf, hf_module, info, ct_packed));
    else
      EMBER_RETURN_IF_ERROR(t->add(gguf, info));
  }
  if (!spec.tied_embeddings && t->refs_.find("output.weight") == t->refs_.end())
    return make_error(ErrorKind::invalid_file, "{}: missing tensor 'lm_head.weight' (tie_word_embeddings is false)",
                      c.name());
  return t;
}

Status HfTensors::add(const std::string& gguf_name, const st::TensorInfo& t) {
  if (t.shape.size() > 4)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' has {} dimensions (at most 4)", name(), t.name,
                      t.shape.size());
  TensorRef r;
  r.n_dims = int(t.shape.size());
  for (size_t i = 0; i < t.shape.size(); ++i) r.ne[i] = t.shape[t.shape.size() - 1 - i];
  r.n_elements = t.n_elements;
  r.n_bytes = t.n_bytes;
  r.data = t.data;
  if (t.dtype == st::Dtype::F8_E4M3) return add_fp8(gguf_name, t);
  if (t.dtype == st::Dtype::F64) {  // rare; kept simple: converted to F32
    std::vector<uint8_t>& buf = owned_.emplace_back(size_t(t.n_elements) * 4);
    for (int64_t i = 0; i < t.n_elements; ++i) {
      double d;
      std::memcpy(&d, t.data + i * 8, 8);
      const float f = float(d);
      std::memcpy(buf.data() + i * 4, &f, 4);
    }
    r.type = quant::Type::F32;
    r.n_bytes = buf.size();
    r.data = buf.data();
  } else if (const auto type = direct_type(t.dtype)) {
    r.type = *type;
    const size_t elem = st::dtype_size(t.dtype);
    if (reinterpret_cast<uintptr_t>(t.data) % elem != 0) {  // the header length need not keep alignment
      std::vector<uint8_t>& buf = owned_.emplace_back(t.data, t.data + t.n_bytes);
      r.data = buf.data();
    }
  } else {
    return make_error(ErrorKind::unsupported, "{}: tensor '{}' has dtype {}, which ember cannot use as a weight "
                      "(F32, F16, BF16, F64)", name(), t.name, st::dtype_name(t.dtype));
  }
  refs_[gguf_name] = r;
  return {};
}

Status HfTensors::add_fp8(const std::string& gguf_name, const st::TensorInfo& t) {
  (void)gguf_name;
  return make_error(ErrorKind::unsupported, "{}: tensor '{}' is FP8 (F8_E4M3), which is not supported yet", name(),
                    t.name);
}

std::optional<TensorRef> HfTensors::find(std::string_view gguf_name) const {
  const auto it = refs_.find(gguf_name);
  if (it == refs_.end()) return std::nullopt;
  return it->second;
}

std::string HfTensors::display_name(std::string_view gguf_name) const {
  if (const auto it = hf_names_.find(gguf_name); it != hf_names_.end()) return it->second;
  if (gguf_name == "token_embd.weight") return prefix_ + "embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return prefix_ + "norm.weight";
  if (gguf_name == "output.weight") return "lm_head.weight";
  // "blk.N.<gguf module>.<suffix>" -> "<prefix>layers.N.<hf module>.<suffix>"
  if (gguf_name.starts_with("blk.")) {
    const size_t a = gguf_name.find('.', 4), b = gguf_name.rfind('.');
    if (a != std::string_view::npos && b > a) {
      const std::string_view module = gguf_name.substr(a + 1, b - a - 1), rest = gguf_name.substr(a + 1);
      const std::string_view layer = gguf_name.substr(4, a - 4);
      std::string_view number;
      for (const auto& [hf, g] : layer_names_) {
        if (g.find('.') != std::string::npos && g.find('*') == std::string::npos) {
          if (match_pattern(g, rest, &number)) return fmt::format("{}layers.{}.{}", prefix_, layer, fill_pattern(hf, number));
        } else if (match_pattern(g, module, &number)) {
          return fmt::format("{}layers.{}.{}{}", prefix_, layer, fill_pattern(hf, number), gguf_name.substr(b));
        }
      }
    }
  }
  return std::string(gguf_name);
}

void add_one_to_norms(Weights& w) {
  const auto add = [](std::vector<float>& v) {
    for (float& x : v) x += 1.0f;
  };
  add(w.output_norm);
  for (LayerWeights& l : w.layers) {
    for (auto* v : {&l.attn_norm, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffn_norm,
                    &l.moe.pre_norm, &l.moe.post_norm, &l.moe.dense_post_norm})
      add(*v);
  }
}

}  // namespace ember::model
