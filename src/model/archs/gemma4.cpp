// Gemma 4 text models (Hugging Face Gemma4ForCausalLM, or the text model of
// Gemma4ForConditionalGeneration): Gemma 3's layout (embeddings × sqrt(hidden), GeGLU, norms
// before and after attention and FFN, q/k RMSNorm) plus an unscaled RMSNorm on v, attention
// scale 1, per-layer head geometry (full-attention layers: their own head_dim and KV heads,
// k = v when attention_k_eq_v, "proportional" partial rope), a per-layer output scale, and
// optionally a mixture of experts beside the dense MLP (docs/moe.md). Norm weights are
// applied as w (no +1). Per-layer input embeddings (E2B/E4B) and KV sharing are refused.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/archs/arch.h"
#include "model/archs/hf.h"

namespace ember::model {
namespace {

using json = nlohmann::json;

const HfLayerNames kGemma4HfNames = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"post_attention_layernorm", "post_attention_norm"},
    {"pre_feedforward_layernorm", "ffn_norm"},
    {"post_feedforward_layernorm", "post_ffw_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
    {"layer_scalar", "layer_output_scale.weight"},
    // experts (enable_moe_block); the names GGUF gemma4 files use
    {"router.proj", "ffn_gate_inp"},
    {"router.scale", "ffn_gate_inp.scale"},
    {"router.per_expert_scale", "ffn_down_exps.scale"},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"experts.down_proj", "ffn_down_exps.weight"},
    {"experts.*.gate_proj", "ffn_gate.*"},
    {"experts.*.up_proj", "ffn_up.*"},
    {"experts.*.down_proj", "ffn_down.*"},
    {"pre_feedforward_layernorm_2", "pre_ffw_norm_2"},
    {"post_feedforward_layernorm_1", "post_ffw_norm_1"},
    {"post_feedforward_layernorm_2", "post_ffw_norm_2"},
};

// One layer kind's rope: {"rope_type": default | proportional, "rope_theta", "partial_rotary_factor"}.
Status read_rope(const hf::JsonFields& f, const std::string& kind, LayerSpec& l) {
  const json* rp = f.find("rope_parameters");
  if (rp == nullptr) return {};  // defaults below
  if (!rp->is_object() || !rp->contains(kind) || !(*rp)[kind].is_object())
    return f.bad("rope_parameters", "has no object for layer kind " + kind);
  const hf::JsonFields e = f.sub((*rp)[kind], "rope_parameters." + kind);
  auto type = e.string_or("rope_type", "default");
  auto theta = e.float_or("rope_theta", l.rope_base, 1.0, 1e12);
  auto partial = e.float_or("partial_rotary_factor", 1.0, 0.0, 1.0);
  for (const Status& st : {type.status(), theta.status(), partial.status()})
    if (!st.ok()) return st;
  if (*type != "default" && *type != "proportional")
    return e.unsupported("rope_type", fmt::format("'{}' is not supported (default, proportional)", *type));
  l.rope_base = float(*theta);
  // proportional: the first partial * head_dim / 2 pairs rotate at base^(-2i / head_dim).
  if (*type == "proportional" && *partial < 1.0) l.rope_pairs = std::max(1, int(*partial * l.head_dim / 2));
  return {};
}

// Full-attention layers' head_dim / KV heads: per_layer_config {"<il>": {...}} (as saved by
// transformers 5), else global_head_dim / num_global_key_value_heads.
Status read_layer_geometry(const hf::JsonFields& f, int il, bool full, LayerSpec& l) {
  if (const json* plc = f.find("per_layer_config")) {
    if (!plc->is_object()) return f.bad("per_layer_config", "is not an object");
    const std::string key = std::to_string(il);
    if (!plc->contains(key)) return {};
    const hf::JsonFields e = f.sub((*plc)[key], "per_layer_config." + key);
    auto hd = e.int_or("head_dim", l.head_dim, 2, 4096);
    auto kv = e.int_or("num_key_value_heads", l.n_kv_heads, 1, l.n_heads);
    if (!hd) return hd.status();
    if (!kv) return kv.status();
    l.head_dim = int(*hd);
    l.n_kv_heads = int(*kv);
  } else if (full) {
    auto hd = f.int_or("global_head_dim", l.head_dim, 2, 4096);
    auto kv = f.int_or("num_global_key_value_heads", l.n_kv_heads, 1, l.n_heads);
    if (!hd) return hd.status();
    if (!kv) return kv.status();
    l.head_dim = int(*hd);
    l.n_kv_heads = int(*kv);
  }
  if (l.head_dim % 2 != 0 || l.n_heads % l.n_kv_heads != 0)
    return f.bad("per_layer_config", fmt::format("layer {}: head_dim {} / KV heads {} do not fit {} heads", il,
                                                 l.head_dim, l.n_kv_heads, l.n_heads));
  return {};
}

Status read_layers(const hf::JsonFields& f, ModelSpec& s, bool k_eq_v) {
  const json* types = f.find("layer_types");
  if (types != nullptr && (!types->is_array() || types->size() != size_t(s.n_layers)))
    return f.bad("layer_types", fmt::format("is not a list of {} layer kinds", s.n_layers));
  auto window = f.int_or("sliding_window", 512, 1, int64_t(1) << 31);
  if (!window) return window.status();
  for (int il = 0; il < s.n_layers; ++il) {
    bool full = (il + 1) % 6 == 0 || il == s.n_layers - 1;  // transformers' default pattern
    if (types != nullptr) {
      const json& t = (*types)[size_t(il)];
      if (t != "full_attention" && t != "sliding_attention")
        return f.unsupported("layer_types", fmt::format("entry {} is {}", il, t.dump()));
      full = t == "full_attention";
    }
    LayerSpec& l = s.layers[size_t(il)];
    l.window = full ? 0 : int(*window);
    l.rope_base = full ? 1000000.0f : 10000.0f;
    l.k_eq_v = full && k_eq_v;
    EMBER_RETURN_IF_ERROR(read_layer_geometry(f, il, full, l));
    EMBER_RETURN_IF_ERROR(read_rope(f, full ? "full_attention" : "sliding_attention", l));
  }
  return {};
}

Status read_experts(const hf::JsonFields& f, ModelSpec& s) {
  auto n_exp = f.int_key("num_experts", 1, 1 << 16);
  if (!n_exp) return n_exp.status();
  auto n_used = f.int_key("top_k_experts", 1, *n_exp);
  auto ff = f.int_key("moe_intermediate_size", 1, 1 << 20);
  if (!n_used) return n_used.status();
  if (!ff) return ff.status();
  MoeSpec& m = s.moe;
  m.n_experts = int(*n_exp);
  m.n_experts_used = int(*n_used);
  m.n_ff_exp = int(*ff);
  m.norm_topk = true;
  m.router_input_norm = true;
  m.per_expert_scale = true;
  for (auto& l : s.layers) l.ffn = FfnKind::dense_and_moe;
  return {};
}

}  // namespace

Expected<HfModelSpec> gemma4_spec_from_hf(const hf::Config& config) {
  auto spec = common_spec_from_hf(config, "gemma4");
  if (!spec) return spec;
  HfModelSpec& h = *spec;
  ModelSpec& s = h.spec;
  h.layer_names = kGemma4HfNames;
  const hf::JsonFields f = config.fields();
  auto tied = f.bool_or("tie_word_embeddings", true);
  auto final_cap = f.float_or("final_logit_softcapping", 0.0, 0.0, 1e9);
  auto ple = f.int_or("hidden_size_per_layer_input", 0, 0, 1 << 20);
  auto shared = f.int_or("num_kv_shared_layers", 0, 0, 1 << 20);
  auto k_eq_v = f.bool_or("attention_k_eq_v", false);
  auto moe = f.bool_or("enable_moe_block", false);
  for (const Status& st : {tied.status(), final_cap.status(), ple.status(), shared.status(), k_eq_v.status(),
                           moe.status()})
    if (!st.ok()) return st;
  if (*ple > 0) return f.unsupported("hidden_size_per_layer_input", "> 0 (per-layer input embeddings) is not supported");
  if (*shared > 0) return f.unsupported("num_kv_shared_layers", "> 0 (shared KV layers) is not supported");
  if (f.has("use_bidirectional_attention"))
    return f.unsupported("use_bidirectional_attention", "is set; only causal attention is supported");
  h.tied_embeddings = *tied;
  s.qk_norm = true;
  s.v_norm = true;
  s.post_norms = true;
  s.embed_scale = true;
  s.layer_out_scale = true;
  s.attn_scale = 1.0f;  // q/k norms replace the 1/sqrt(head_dim) scaling
  s.final_softcap = float(*final_cap);
  EMBER_RETURN_IF_ERROR(read_layers(f, s, *k_eq_v));
  if (*moe) EMBER_RETURN_IF_ERROR(read_experts(f, s));
  return spec;
}

}  // namespace ember::model

// ---- GGUF gemma4 ----
// Keys as llama.cpp's converter writes them: per-layer `attention.sliding_window_pattern`
// (bool[], true = sliding) and `attention.head_count_kv` (scalar or per-layer array),
// `attention.key_length` (full layers) / `key_length_swa`, `rope.freq_base` / `freq_base_swa`;
// proportional rope as `rope_freqs.weight` (1 for rotated pairs, huge for the rest); k = v
// layers have no `attn_v`; experts as archs/moe.cpp reads them.

namespace ember::model {
namespace {

// Per-layer value of an integer key stored as a scalar or an array of n_layers.
Expected<std::vector<int64_t>> per_layer_ints(const ArchKeys& k, const std::string& key, int n_layers, int64_t fallback,
                                              int64_t lo, int64_t hi) {
  const std::string full = k.arch() + "." + key;
  const gguf::Value* v = k.file().find(full);
  std::vector<int64_t> out(size_t(n_layers), fallback);
  if (v == nullptr) return out;
  const auto bad = [&] {
    return make_error(ErrorKind::invalid_file, "{}: metadata '{}' must be an integer in [{}, {}] or {} of them",
                      k.file().name(), full, lo, hi, n_layers);
  };
  if (const gguf::Array* a = v->as_array()) {
    if (a->items.size() != size_t(n_layers)) return bad();
    for (size_t i = 0; i < out.size(); ++i) {
      const auto x = a->items[i].as_int();
      if (!x || *x < lo || *x > hi) return bad();
      out[i] = *x;
    }
    return out;
  }
  const auto x = v->as_int();
  if (!x || *x < lo || *x > hi) return bad();
  out.assign(out.size(), *x);
  return out;
}

// Rotated pairs of proportional rope from rope_freqs.weight [head_dim / 2]: a run of 1s,
// then factors so large that those pairs do not rotate. 0: no tensor (full rope).
Expected<int> rope_pairs_from_freqs(const gguf::File& f, int head_dim) {
  const gguf::TensorInfo* t = f.find_tensor("rope_freqs.weight");
  if (t == nullptr) return 0;
  if (t->type != quant::Type::F32 || t->n_elements != head_dim / 2)
    return make_error(ErrorKind::invalid_file, "{}: 'rope_freqs.weight' must be F32 [{}]", f.name(), head_dim / 2);
  std::vector<float> v(size_t(head_dim / 2));
  std::memcpy(v.data(), t->data, v.size() * sizeof(float));
  int pairs = 0;
  while (pairs < int(v.size()) && v[size_t(pairs)] == 1.0f) ++pairs;
  for (size_t i = size_t(pairs); i < v.size(); ++i)
    if (!(v[i] >= 1e10f))
      return make_error(ErrorKind::unsupported, "{}: rope_freqs.weight[{}] = {}: only proportional rope (1s, then "
                        "pairs that do not rotate) is supported", f.name(), i, v[i]);
  return pairs == int(v.size()) ? 0 : pairs;
}

Status gemma4_refusals(const ArchKeys& k) {
  auto ple = k.int_key_or("embedding_length_per_layer_input", 0, 0, 1 << 20);
  auto shared = k.int_key_or("attention.shared_kv_layers", 0, 0, 1 << 20);
  if (!ple) return ple.status();
  if (!shared) return shared.status();
  if (*ple > 0)
    return make_error(ErrorKind::unsupported, "{}: per-layer input embeddings (gemma4.embedding_length_per_layer_input "
                      "{}) are not supported", k.file().name(), *ple);
  if (*shared > 0)
    return make_error(ErrorKind::unsupported, "{}: shared KV layers (gemma4.attention.shared_kv_layers {}) are not "
                      "supported", k.file().name(), *shared);
  return {};
}

Status gemma4_layers(const ArchKeys& k, ModelSpec& s, int n_heads) {
  auto hd_full = k.int_key("attention.key_length", 2, 4096);
  if (!hd_full) return hd_full.status();
  auto hd_swa = k.int_key_or("attention.key_length_swa", *hd_full, 2, 4096);
  auto window = k.int_key_or("attention.sliding_window", 512, 1, int64_t(1) << 31);
  auto base = k.float_key_or("rope.freq_base", 1000000.0, 1.0, 1e12);
  auto base_swa = k.float_key_or("rope.freq_base_swa", 10000.0, 1.0, 1e12);
  auto kv = per_layer_ints(k, "attention.head_count_kv", s.n_layers, n_heads, 1, n_heads);
  auto pairs = rope_pairs_from_freqs(k.file(), int(*hd_full));
  for (const Status& st : {hd_swa.status(), window.status(), base.status(), base_swa.status(), kv.status(),
                           pairs.status()})
    if (!st.ok()) return st;
  const gguf::Array* pattern = k.file().get_array(k.arch() + ".attention.sliding_window_pattern");
  if (pattern != nullptr && pattern->items.size() != size_t(s.n_layers))
    return make_error(ErrorKind::invalid_file, "{}: '{}.attention.sliding_window_pattern' has {} entries, expected {}",
                      k.file().name(), k.arch(), pattern->items.size(), s.n_layers);
  for (int il = 0; il < s.n_layers; ++il) {
    bool sliding = (il + 1) % 6 != 0;
    if (pattern != nullptr) {
      const auto b = pattern->items[size_t(il)].as_bool();
      const auto i = pattern->items[size_t(il)].as_int();
      if (!b && !i)
        return make_error(ErrorKind::invalid_file, "{}: '{}.attention.sliding_window_pattern' must hold bools",
                          k.file().name(), k.arch());
      sliding = b ? *b : *i != 0;
    }
    LayerSpec& l = s.layers[size_t(il)];
    l.head_dim = int(sliding ? *hd_swa : *hd_full);
    l.n_kv_heads = int((*kv)[size_t(il)]);
    if (n_heads % l.n_kv_heads != 0)
      return make_error(ErrorKind::invalid_file, "{}: layer {}: {} heads are not a multiple of {} KV heads",
                        k.file().name(), il, n_heads, l.n_kv_heads);
    l.window = sliding ? int(*window) : 0;
    l.rope_base = float(sliding ? *base_swa : *base);
    l.rope_scale = 1.0f;
    l.rope_pairs = sliding ? 0 : *pairs;
    l.k_eq_v = k.file().find_tensor(fmt::format("blk.{}.attn_v.weight", il)) == nullptr;
  }
  return {};
}

}  // namespace

Expected<ModelSpec> gemma4_spec(const ArchKeys& k) {
  EMBER_RETURN_IF_ERROR(gemma4_refusals(k));
  ModelSpec s;
  s.arch = k.arch();
  auto n_layers = k.int_key("block_count", 1, 1024);
  auto n_embd = k.int_key("embedding_length", 1, 1 << 20);
  auto n_ff = k.int_key("feed_forward_length", 1, 1 << 20);
  auto n_heads = k.int_key("attention.head_count", 1, 4096);
  auto n_ctx = k.int_key_or("context_length", 4096, 1, int64_t(1) << 31);
  auto eps = k.float_key_or("attention.layer_norm_rms_epsilon", 1e-6, 0.0, 1.0);
  auto cap = k.float_key_or("final_logit_softcapping", 0.0, 0.0, 1e9);
  for (const Status& st : {n_layers.status(), n_embd.status(), n_ff.status(), n_heads.status(), n_ctx.status(),
                           eps.status(), cap.status()})
    if (!st.ok()) return st;
  const gguf::TensorInfo* embd = k.file().find_tensor("token_embd.weight");
  if (embd == nullptr) return make_error(ErrorKind::invalid_file, "{}: missing tensor 'token_embd.weight'", k.file().name());
  s.n_layers = int(*n_layers);
  s.n_embd = int(*n_embd);
  s.n_ff = int(*n_ff);
  s.n_vocab = int(embd->ne[1]);
  s.n_ctx_train = int(*n_ctx);
  s.norm_eps = float(*eps);
  s.final_softcap = float(*cap);
  s.act = Activation::gelu_tanh;
  s.rope_style = cpu::RopeStyle::neox;
  s.qk_norm = s.v_norm = s.post_norms = s.embed_scale = s.layer_out_scale = true;
  s.attn_scale = 1.0f;
  s.layers.assign(size_t(s.n_layers), LayerSpec{int(*n_heads), int(*n_heads), 0, 0, 10000.0f, 1.0f});
  EMBER_RETURN_IF_ERROR(gemma4_layers(k, s, int(*n_heads)));
  EMBER_RETURN_IF_ERROR(read_moe_gguf(k, s));
  if (s.has_moe()) {  // Gemma 4 runs its experts beside the dense MLP
    for (auto& l : s.layers)
      if (l.ffn == FfnKind::moe) l.ffn = FfnKind::dense_and_moe;
    s.moe.norm_topk = true;
    s.moe.router_input_norm = true;
    s.moe.per_expert_scale = true;
  }
  return s;
}

}  // namespace ember::model
