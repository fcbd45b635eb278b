#include "model/archs/arch.h"

#include <fmt/format.h>

#include <cmath>

namespace ember::model {

Expected<int64_t> ArchKeys::int_key_or(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  const std::string full = fmt::format("{}.{}", arch_, key);
  const gguf::Value* v = file_.find(full);
  if (v == nullptr) return fallback;
  const auto i = v->as_int();
  if (!i || *i < lo || *i > hi)
    return make_error(ErrorKind::invalid_file, "{}: metadata '{}' must be an integer in [{}, {}]", file_.name(), full,
                      lo, hi);
  return *i;
}

Expected<int64_t> ArchKeys::int_key(std::string_view key, int64_t lo, int64_t hi) const {
  const std::string full = fmt::format("{}.{}", arch_, key);
  if (file_.find(full) == nullptr)
    return make_error(ErrorKind::invalid_file, "{}: missing metadata '{}'", file_.name(), full);
  return int_key_or(key, 0, lo, hi);
}

Expected<double> ArchKeys::float_key_or(std::string_view key, double fallback, double lo, double hi) const {
  const std::string full = fmt::format("{}.{}", arch_, key);
  const gguf::Value* v = file_.find(full);
  if (v == nullptr) return fallback;
  const auto f = v->as_float();
  if (!f || !std::isfinite(*f) || *f < lo || *f > hi)
    return make_error(ErrorKind::invalid_file, "{}: metadata '{}' must be a number in [{}, {}]", file_.name(), full, lo,
                      hi);
  return *f;
}

Expected<ModelSpec> common_spec(const ArchKeys& k) {
  constexpr int64_t kMaxDim = 1 << 20;
  ModelSpec s;
  s.arch = k.arch();
  auto n_layers = k.int_key("block_count", 1, 1024);
  auto n_embd = k.int_key("embedding_length", 1, kMaxDim);
  auto n_ff = k.int_key("feed_forward_length", 1, kMaxDim);
  auto n_heads = k.int_key("attention.head_count", 1, 4096);
  auto n_ctx = k.int_key_or("context_length", 4096, 1, int64_t(1) << 31);
  auto eps = k.float_key_or("attention.layer_norm_rms_epsilon", 1e-5, 0.0, 1.0);
  auto rope_base = k.float_key_or("rope.freq_base", 10000.0, 1.0, 1e12);
  for (const Status& st : {n_layers.status(), n_embd.status(), n_ff.status(), n_heads.status(), n_ctx.status(),
                           eps.status(), rope_base.status()})
    if (!st.ok()) return st;
  auto n_kv_heads = k.int_key_or("attention.head_count_kv", *n_heads, 1, *n_heads);
  auto head_dim = k.int_key_or("attention.key_length", *n_embd / *n_heads, 1, 4096);
  auto v_dim = k.int_key_or("attention.value_length", head_dim.ok() ? *head_dim : 0, 1, 4096);
  auto scale_type = k.file().get_string(k.arch() + ".rope.scaling.type");
  auto scale_factor = k.float_key_or("rope.scaling.factor", 1.0, 1e-6, 1e6);
  for (const Status& st : {n_kv_heads.status(), head_dim.status(), v_dim.status(), scale_factor.status()})
    if (!st.ok()) return st;
  if (*v_dim != *head_dim)
    return make_error(ErrorKind::unsupported, "{}: key_length {} != value_length {} is not supported",
                      k.file().name(), *head_dim, *v_dim);
  if (*n_heads % *n_kv_heads != 0)
    return make_error(ErrorKind::invalid_file, "{}: head_count {} is not a multiple of head_count_kv {}",
                      k.file().name(), *n_heads, *n_kv_heads);
  float rope_scale = 1.0f;
  if (scale_type != nullptr && *scale_type == "linear") rope_scale = float(1.0 / *scale_factor);
  else if (scale_type != nullptr && *scale_type != "none")
    return make_error(ErrorKind::unsupported, "{}: rope scaling '{}' is not supported yet", k.file().name(),
                      *scale_type);
  s.n_layers = int(*n_layers);
  s.n_embd = int(*n_embd);
  s.n_ff = int(*n_ff);
  s.n_ctx_train = int(*n_ctx);
  s.norm_eps = float(*eps);
  s.layers.assign(size_t(s.n_layers), LayerSpec{int(*n_heads), int(*n_kv_heads), int(*head_dim), 0,
                                                float(*rope_base), rope_scale});
  // n_vocab comes from the token embedding (the tokenizer must agree; checked at load).
  const gguf::TensorInfo* embd = k.file().find_tensor("token_embd.weight");
  if (embd == nullptr) return make_error(ErrorKind::invalid_file, "{}: missing tensor 'token_embd.weight'", k.file().name());
  s.n_vocab = int(embd->ne[1]);
  return s;
}

Expected<ModelSpec> spec_from_gguf(const gguf::File& file) {
  const std::string* arch = file.get_string("general.architecture");
  if (arch == nullptr) return make_error(ErrorKind::invalid_file, "{}: missing metadata 'general.architecture'", file.name());
  ArchKeys keys(file, *arch);
  if (*arch == "llama" || *arch == "mistral" || *arch == "qwen2" || *arch == "qwen3" || *arch == "qwen2moe" ||
      *arch == "qwen3moe")
    return llama_spec(keys);
  if (*arch == "gemma3") return gemma3_spec(keys);
  if (*arch == "gemma4") return gemma4_spec(keys);
  return make_error(ErrorKind::unsupported,
                    "{}: architecture '{}' is not supported (supported: llama, mistral, qwen2, qwen3, qwen2moe, "
                    "qwen3moe, gemma3, gemma4)",
                    file.name(), *arch);
}

}  // namespace ember::model
