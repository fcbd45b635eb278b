// NVFP4 checkpoints (compressed-tensors and ModelOpt layouts, docs/hf.md) and compressed-tensors
// MXFP4 (mxfp4-pack-quantized, as `ember quantize` writes it): the packed
// weight and its E4M3 block scales are repacked into ember's NVFP4 blocks; the global
// scale, pre_quant_scale and low-rank factors become Linear extras.
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "model/archs/hf.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace ember::model {
namespace {

namespace st = safetensors;

std::optional<quant::Type> float_type(st::Dtype d) {
  switch (d) {
    case st::Dtype::F32: return quant::Type::F32;
    case st::Dtype::F16: return quant::Type::F16;
    case st::Dtype::BF16: return quant::Type::BF16;
    default: return std::nullopt;
  }
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

Expected<std::vector<float>> HfTensors::small_vector(const std::string& tensor, int64_t n) const {
  const st::TensorInfo* t = checkpoint_.find_tensor(tensor);
  if (t == nullptr) return make_error(ErrorKind::invalid_file, "{}: missing tensor '{}'", name(), tensor);
  const auto type = float_type(t->dtype);
  if (!type || t->n_elements != n)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' is {} {}, expected {} float element(s)", name(),
                      tensor, st::dtype_name(t->dtype), shape_str(t->shape), n);
  std::vector<uint8_t> aligned(t->data, t->data + t->n_bytes);
  std::vector<float> out(static_cast<size_t>(n));
  quant::dequantize_row(*type, aligned.data(), out.data(), n);
  return out;
}

Expected<LowRankFactor> HfTensors::factor(const std::string& tensor, int64_t rows, int64_t cols) {
  const st::TensorInfo* t = checkpoint_.find_tensor(tensor);
  if (t == nullptr) return make_error(ErrorKind::invalid_file, "{}: missing tensor '{}'", name(), tensor);
  const auto type = float_type(t->dtype);
  if (!type || t->shape.size() != 2 || t->shape[0] != rows || t->shape[1] != cols)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' is {} {}, expected a float matrix [{}, {}]", name(),
                      tensor, st::dtype_name(t->dtype), shape_str(t->shape), rows, cols);
  const std::vector<uint8_t>& buf = owned_.emplace_back(t->data, t->data + t->n_bytes);
  return LowRankFactor{*type, buf.data()};
}

Status HfTensors::add_lowrank(const std::string& module, int64_t n_in, int64_t n_out, Extras& e) {
  const std::string a_name = module + ".svdquant_lora_a", b_name = module + ".svdquant_lora_b";
  const st::TensorInfo* a = checkpoint_.find_tensor(a_name);
  const st::TensorInfo* b = checkpoint_.find_tensor(b_name);
  if (a == nullptr && b == nullptr) {
    if (quant_.svd)
      return make_error(ErrorKind::invalid_file, "{}: module '{}' is NVFP4_SVD ({}) but has no '{}'", name(), module,
                        quant_.source, a_name);
    return {};
  }
  if (a == nullptr || a->shape.size() != 2 || a->shape[0] <= 0)
    return make_error(ErrorKind::invalid_file, "{}: '{}' needs '{}' of shape [rank, {}]", name(), b_name, a_name, n_in);
  const int64_t rank = a->shape[0];
  auto fa = factor(a_name, rank, n_in);
  if (!fa) return fa.status();
  auto fb = factor(b_name, n_out, rank);
  if (!fb) return fb.status();
  e.a = *fa;
  e.b = *fb;
  e.rank = rank;
  return {};
}

Status HfTensors::add_nvfp4(const std::string& gguf_name, const std::string& module, const st::TensorInfo& packed,
                            bool compressed_tensors) {
  if (compressed_tensors && quant_.kind == hf::WeightQuant::mxfp4_compressed_tensors)
    return add_mxfp4(gguf_name, module, packed);
  const auto want = compressed_tensors ? hf::WeightQuant::nvfp4_compressed_tensors : hf::WeightQuant::nvfp4_modelopt;
  if (quant_.kind != want)
    return make_error(ErrorKind::unsupported, "{}: tensor '{}' is packed 4-bit ({} layout) but the checkpoint declares "
                      "{}; ember reads NVFP4 as compressed-tensors 'nvfp4-pack-quantized' or ModelOpt NVFP4/NVFP4_SVD",
                      name(), packed.name, compressed_tensors ? "compressed-tensors" : "ModelOpt",
                      quant_.kind == hf::WeightQuant::none ? std::string("no quantization")
                                                           : "'" + quant_.name + "' (" + quant_.source + ")");
  if (packed.dtype != st::Dtype::U8 || packed.shape.size() != 2 || packed.shape[1] % 8 != 0)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' is {} {}, expected U8 [N, K/2] with K a multiple of 16",
                      name(), packed.name, st::dtype_name(packed.dtype), shape_str(packed.shape));
  const int64_t n_out = packed.shape[0], n_in = packed.shape[1] * 2, n_blocks = n_in / quant::kQK_NV;
  const std::string scale_name = module + ".weight_scale";
  const st::TensorInfo* scale = checkpoint_.find_tensor(scale_name);
  if (scale == nullptr || scale->dtype != st::Dtype::F8_E4M3 || scale->shape.size() != 2 ||
      scale->shape[0] != n_out || scale->shape[1] != n_blocks)
    return make_error(ErrorKind::invalid_file, "{}: '{}' needs '{}' as F8_E4M3 [{}, {}]{}", name(), packed.name,
                      scale_name, n_out, n_blocks,
                      scale ? fmt::format(", found {} {}", st::dtype_name(scale->dtype), shape_str(scale->shape)) : "");
  // The two conventions are reciprocals: compressed-tensors divides, ModelOpt multiplies.
  const std::string global_name = module + (compressed_tensors ? ".weight_global_scale" : ".weight_scale_2");
  auto global = small_vector(global_name, 1);
  if (!global) return global.status();
  const float g = (*global)[0];
  if (!std::isfinite(g) || g <= 0.0f)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' is {}, expected a positive finite scale", name(),
                      global_name, g);
  std::vector<uint8_t>& buf = owned_.emplace_back(size_t(n_out * n_blocks) * sizeof(quant::block_nvfp4));
  auto* blocks = reinterpret_cast<quant::block_nvfp4*>(buf.data());
  for (int64_t i = 0; i < n_out * n_blocks; ++i) {  // both keep the even element in the low nibble
    blocks[i].d = scale->data[i];
    std::memcpy(blocks[i].qs, packed.data + i * (quant::kQK_NV / 2), quant::kQK_NV / 2);
  }
  TensorRef r;
  r.type = quant::Type::NVFP4;
  r.n_dims = 2;
  r.ne = {n_in, n_out, 1, 1};
  r.n_elements = n_in * n_out;
  r.n_bytes = buf.size();
  r.data = buf.data();
  refs_[gguf_name] = r;
  Extras e;
  e.scale = compressed_tensors ? 1.0f / g : g;
  if (checkpoint_.find_tensor(module + ".pre_quant_scale") != nullptr) {
    auto pqs = small_vector(module + ".pre_quant_scale", n_in);
    if (!pqs) return pqs.status();
    e.pre_quant_scale = std::move(*pqs);
  }
  EMBER_RETURN_IF_ERROR(add_lowrank(module, n_in, n_out, e));
  extras_[gguf_name] = std::move(e);
  return {};
}

Status HfTensors::add_mxfp4(const std::string& gguf_name, const std::string& module, const st::TensorInfo& packed) {
  if (packed.dtype != st::Dtype::U8 || packed.shape.size() != 2 || packed.shape[1] % (quant::kQK / 2) != 0)
    return make_error(ErrorKind::invalid_file, "{}: tensor '{}' is {} {}, expected U8 [N, K/2] with K a multiple of 32",
                      name(), packed.name, st::dtype_name(packed.dtype), shape_str(packed.shape));
  const int64_t n_out = packed.shape[0], n_in = packed.shape[1] * 2, n_blocks = n_in / quant::kQK;
  const std::string scale_name = module + ".weight_scale";
  const st::TensorInfo* scale = checkpoint_.find_tensor(scale_name);
  if (scale == nullptr || scale->dtype != st::Dtype::U8 || scale->shape.size() != 2 || scale->shape[0] != n_out ||
      scale->shape[1] != n_blocks)
    return make_error(ErrorKind::invalid_file, "{}: '{}' needs '{}' as U8 (E8M0) [{}, {}]{}", name(), packed.name,
                      scale_name, n_out, n_blocks,
                      scale ? fmt::format(", found {} {}", st::dtype_name(scale->dtype), shape_str(scale->shape)) : "");
  std::vector<uint8_t>& buf = owned_.emplace_back(size_t(n_out * n_blocks) * sizeof(quant::block_mxfp4));
  auto* blocks = reinterpret_cast<quant::block_mxfp4*>(buf.data());
  for (int64_t i = 0; i < n_out * n_blocks; ++i) {  // HF pairs elements 2j, 2j+1; ggml pairs j, j+16
    blocks[i].e = scale->data[i];
    const uint8_t* src = packed.data + i * (quant::kQK / 2);
    uint8_t codes[quant::kQK];
    for (int j = 0; j < quant::kQK / 2; ++j) {
      codes[2 * j] = src[j] & 0x0f;
      codes[2 * j + 1] = src[j] >> 4;
    }
    for (int j = 0; j < quant::kQK / 2; ++j) blocks[i].qs[j] = uint8_t(codes[j] | (codes[j + quant::kQK / 2] << 4));
  }
  TensorRef r;
  r.type = quant::Type::MXFP4;
  r.n_dims = 2;
  r.ne = {n_in, n_out, 1, 1};
  r.n_elements = n_in * n_out;
  r.n_bytes = buf.size();
  r.data = buf.data();
  refs_[gguf_name] = r;
  Extras e;
  EMBER_RETURN_IF_ERROR(add_lowrank(module, n_in, n_out, e));
  extras_[gguf_name] = std::move(e);
  return {};
}

Status HfTensors::apply_extras(Weights& w) const {
  if (w.token_embd.type == quant::Type::NVFP4)
    return make_error(ErrorKind::unsupported, "{}: the token embedding is NVFP4, which ember does not support (keep "
                      "embed_tokens in the ignore / exclude_modules list)", name());
  const auto apply = [this](Linear& l) {
    const auto it = extras_.find(l.name);
    if (!l.present() || it == extras_.end()) return;
    l.scale = it->second.scale;
    l.lowrank_a = it->second.a;
    l.lowrank_b = it->second.b;
    l.rank = it->second.rank;
    l.pre_quant_scale = it->second.pre_quant_scale;
  };
  apply(w.output);
  for (LayerWeights& lw : w.layers) {
    for (Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) apply(*l);
    for (Linear* l : lw.moe.linears()) apply(*l);  // each expert its own global scale
  }
  return {};
}

}  // namespace ember::model
