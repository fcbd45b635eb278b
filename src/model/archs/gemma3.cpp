// Gemma 3: embeddings scaled by sqrt(hidden), GeGLU (tanh GELU), RMSNorm before and
// after attention and FFN, q/k RMSNorm, every 6th layer global (rope base from the
// file) and the others sliding-window with rope base 10000. GGUF norm weights already
// include Gemma's +1.
#include <cmath>

#include "model/archs/arch.h"

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
