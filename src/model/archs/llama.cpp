// Llama family: Llama 2/3, Mistral, SmolLM2, Mixtral (GGUF arch "llama"), Qwen2 (q/k/v
// biases, NEOX rope), Qwen3 (q/k RMSNorm per head, NEOX rope), and their mixture-of-experts
// versions Qwen2-MoE / Qwen3-MoE (experts: archs/moe.cpp).
#include "model/archs/arch.h"
#include "model/archs/hf.h"

namespace ember::model {

Expected<ModelSpec> llama_spec(const ArchKeys& keys) {
  auto spec = common_spec(keys);
  if (!spec) return spec;
  ModelSpec& s = *spec;
  s.act = Activation::silu;
  // llama.cpp's converter permutes llama/mistral q/k rows for interleaved-pair rope;
  // qwen2/qwen3 keep the HF (NEOX, half-split) layout.
  const bool neox = s.arch == "qwen2" || s.arch == "qwen3" || s.arch == "qwen2moe" || s.arch == "qwen3moe";
  s.rope_style = neox ? cpu::RopeStyle::neox : cpu::RopeStyle::interleaved;
  s.qk_norm = s.arch == "qwen3" || s.arch == "qwen3moe";
  EMBER_RETURN_IF_ERROR(read_moe_gguf(keys, s));
  auto window = keys.int_key_or("attention.sliding_window", 0, 0, int64_t(1) << 31);
  if (!window) return window.status();
  if (*window > 0 && s.arch == "mistral")
    for (auto& l : s.layers) l.window = int(*window);
  return spec;
}

}  // namespace ember::model

// ---- Hugging Face: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
// MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM ----

namespace ember::model {

namespace {

const HfLayerNames kLlamaHfNames = {
    {"input_layernorm", "attn_norm"},          {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},            {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},       {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},       {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},             {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

}  // namespace

Expected<HfModelSpec> llama_spec_from_hf(const hf::Config& config) {
  const std::string& a = config.architecture;
  const std::string arch = a == "MistralForCausalLM"    ? "mistral"
                           : a == "Qwen2ForCausalLM"    ? "qwen2"
                           : a == "Qwen3ForCausalLM"    ? "qwen3"
                           : a == "Qwen2MoeForCausalLM" ? "qwen2moe"
                           : a == "Qwen3MoeForCausalLM" ? "qwen3moe"
                                                        : "llama";  // Llama, Mixtral
  auto spec = common_spec_from_hf(config, arch);
  if (!spec) return spec;
  spec->layer_names = kLlamaHfNames;
  spec->spec.qk_norm = arch == "qwen3" || arch == "qwen3moe";
  EMBER_RETURN_IF_ERROR(read_moe_hf(config, *spec));
  // Without layer_types: Mistral slides every layer when sliding_window is set; Qwen2/3 from
  // layer max_window_layers on when use_sliding_window.
  const hf::JsonFields f = config.fields();
  auto has_window = f.int_or("sliding_window", 0, 0, int64_t(1) << 31);
  auto use_window = f.bool_or("use_sliding_window", false);
  auto from_layer = f.int_or("max_window_layers", 0, 0, 1 << 20);
  for (const Status& st : {has_window.status(), use_window.status(), from_layer.status()})
    if (!st.ok()) return st;
  const auto sliding = [&](int il) {
    if (arch == "mistral" || a == "MixtralForCausalLM") return *has_window > 0;
    if (arch.starts_with("qwen")) return *use_window && *has_window > 0 && il >= *from_layer;
    return false;
  };
  EMBER_RETURN_IF_ERROR(apply_layer_types(config, *spec, sliding, false));
  return spec;
}

}  // namespace ember::model
