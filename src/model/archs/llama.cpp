// Llama family: Llama 2/3, Mistral, SmolLM2 (GGUF arch "llama"), Qwen2 (q/k/v biases,
// NEOX rope), Qwen3 (q/k RMSNorm per head, NEOX rope).
#include "model/archs/arch.h"

namespace ember::model {

Expected<ModelSpec> llama_spec(const ArchKeys& keys) {
  auto spec = common_spec(keys);
  if (!spec) return spec;
  ModelSpec& s = *spec;
  s.act = Activation::silu;
  // llama.cpp's converter permutes llama/mistral q/k rows for interleaved-pair rope;
  // qwen2/qwen3 keep the HF (NEOX, half-split) layout.
  const bool neox = s.arch == "qwen2" || s.arch == "qwen3";
  s.rope_style = neox ? cpu::RopeStyle::neox : cpu::RopeStyle::interleaved;
  s.qk_norm = s.arch == "qwen3";
  auto window = keys.int_key_or("attention.sliding_window", 0, 0, int64_t(1) << 31);
  if (!window) return window.status();
  if (*window > 0 && s.arch == "mistral")
    for (auto& l : s.layers) l.window = int(*window);
  return spec;
}

}  // namespace ember::model
