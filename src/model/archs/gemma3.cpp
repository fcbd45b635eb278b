// Gemma 3: embeddings scaled by sqrt(hidden), GeGLU (tanh GELU), RMSNorm before and
// after attention and FFN, q/k RMSNorm, every 6th layer global (rope base from the
// file) and the others sliding-window with rope base 10000. GGUF norm weights already
// include Gemma's +1.
#include <cmath>

#include "model/archs/arch.h"
#include "model/archs/hf.h"

namespace ember::model {

Expected<ModelSpec> gemma3_spec(const ArchKeys& keys) {
  auto spec = common_spec(keys);
  if (!spec) return spec;
  ModelSpec& s = *spec;
  s.act = Activation::gelu_tanh;
  s.rope_style = cpu::RopeStyle::neox;
  s.qk_norm = true;
  s.post_norms = true;
  s.embed_scale = true;
  auto window = keys.int_key_or("attention.sliding_window", 0, 0, int64_t(1) << 31);
  auto period = keys.int_key_or("attention.sliding_window_pattern", 6, 1, 1024);
  if (!window) return window.status();
  if (!period) return period.status();
  // Gemma 3 scales q by query_pre_attn_scalar^-1/2, which equals head_dim for released sizes.
  s.attn_scale = float(1.0 / std::sqrt(double(s.layers[0].head_dim)));
  for (int il = 0; il < s.n_layers; ++il) {
    LayerSpec& l = s.layers[size_t(il)];
    const bool global = (il + 1) % *period == 0;
    if (!global) {
      l.window = int(*window);
      l.rope_base = 10000.0f;
      l.rope_scale = 1.0f;
    }
  }
  return spec;
}

}  // namespace ember::model

// ---- Hugging Face: Gemma3ForCausalLM, and the text model of Gemma3ForConditionalGeneration ----

namespace ember::model {

namespace {

const HfLayerNames kGemma3HfNames = {
    {"input_layernorm", "attn_norm"},             {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},               {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},          {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},          {"post_attention_layernorm", "post_attention_norm"},
    {"pre_feedforward_layernorm", "ffn_norm"},    {"post_feedforward_layernorm", "post_ffw_norm"},
    {"mlp.gate_proj", "ffn_gate"},                {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

}  // namespace

Expected<HfModelSpec> gemma3_spec_from_hf(const hf::Config& config) {
  auto spec = common_spec_from_hf(config, "gemma3");
  if (!spec) return spec;
  HfModelSpec& h = *spec;
  ModelSpec& s = h.spec;
  h.layer_names = kGemma3HfNames;
  h.norm_plus_one = true;
  s.qk_norm = true;
  s.post_norms = true;
  s.embed_scale = true;
  const hf::JsonFields f = config.fields();
  auto tied = f.bool_or("tie_word_embeddings", true);  // Gemma's default
  auto qpas = f.float_or("query_pre_attn_scalar", double(s.layers[0].head_dim), 1e-6, 1e9);
  auto final_cap = f.float_or("final_logit_softcapping", 0.0, 0.0, 1e9);
  auto attn_cap = f.float_or("attn_logit_softcapping", 0.0, 0.0, 1e9);
  const char* pattern_key = f.has("sliding_window_pattern") ? "sliding_window_pattern" : "_sliding_window_pattern";
  auto period = f.int_or(pattern_key, 6, 1, 1024);
  for (const Status& st : {tied.status(), qpas.status(), final_cap.status(), attn_cap.status(), period.status()})
    if (!st.ok()) return st;
  h.tied_embeddings = *tied;
  s.attn_scale = float(1.0 / std::sqrt(*qpas));
  s.final_softcap = float(*final_cap);
  s.attn_softcap = float(*attn_cap);
  EMBER_RETURN_IF_ERROR(apply_layer_types(config, h, [&](int il) { return (il + 1) % *period != 0; }, true));
  return spec;
}

}  // namespace ember::model
