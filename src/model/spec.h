// ModelSpec: everything that makes one decoder-only architecture differ from another,
// as data. The one generic decoder (decoder.h) reads only this and the weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"

namespace ember::model {

enum class Activation { silu, gelu_tanh };  // gated: act(gate) * up

struct LayerSpec {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int window = 0;            // sliding-window size; 0 = global attention
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;   // linear position scaling factor (1 = none)
};

struct ModelSpec {
  std::string arch;          // GGUF general.architecture
  int n_layers = 0;
  int n_embd = 0;            // hidden size
  int n_ff = 0;              // feed-forward size
  int n_vocab = 0;
  int n_ctx_train = 0;
  float norm_eps = 1e-5f;
  Activation act = Activation::silu;
  cpu::RopeStyle rope_style = cpu::RopeStyle::interleaved;
  bool qk_norm = false;          // RMSNorm over each q/k head (Qwen3, Gemma 3)
  bool post_norms = false;       // norms after attention and FFN outputs (Gemma 2/3)
  bool embed_scale = false;      // multiply embeddings by sqrt(n_embd) (Gemma)
  float attn_scale = 0.0f;       // q·k scale; 0 = 1/sqrt(head_dim)
  float attn_softcap = 0.0f;     // 0 = off
  float final_softcap = 0.0f;    // tanh soft-capping of logits; 0 = off
  std::vector<LayerSpec> layers;

  int max_head_dim() const;
  int max_q_width() const;   // max over layers of n_heads * head_dim
  int max_kv_width() const;  // max over layers of n_kv_heads * head_dim
};

}  // namespace ember::model
