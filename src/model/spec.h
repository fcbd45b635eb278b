// ModelSpec: everything that makes one decoder-only architecture differ from another,
// as data. The one generic decoder (decoder.h) reads only this and the weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"

namespace ember::model {

enum class Activation { silu, gelu_tanh };  // gated: act(gate) * up

// What a layer's feed-forward block is: one gated MLP, a mixture of experts, or both in
// parallel with their outputs added (Gemma 4). See docs/moe.md.
enum class FfnKind { dense, moe, dense_and_moe };
enum class MoeGating { softmax, sigmoid };  // router logits -> probabilities

// Mixture-of-experts configuration (shared by every MoE layer of a model).
struct MoeSpec {
  int n_experts = 0;          // routed experts per layer
  int n_experts_used = 0;     // top-k experts per token
  int n_ff_exp = 0;           // each expert's FFN width
  MoeGating gating = MoeGating::softmax;
  bool norm_topk = true;      // renormalise the k selected weights to sum to 1
  float weights_scale = 1.0f; // multiplies every routing weight (routed_scaling_factor)
  int n_ff_shexp = 0;         // shared expert's FFN width (Qwen2-MoE); 0 = none
  bool shexp_gate = false;    // shared expert output × sigmoid(x · ffn_gate_inp_shexp)
  // Gemma 4: the router reads RMSNorm(residual) ⊙ router_scale / sqrt(n_embd) instead of
  // the FFN input, and each expert's weight is multiplied by per_expert_scale[e].
  bool router_input_norm = false;
  bool per_expert_scale = false;
};

struct LayerSpec {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int window = 0;            // sliding-window size; 0 = global attention
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;   // linear position scaling factor (1 = none)
  FfnKind ffn = FfnKind::dense;
  bool k_eq_v = false;       // no v projection: v is k's projection (before k-norm and rope) (Gemma 4)
  int rope_pairs = 0;        // > 0: rotate only the first rope_pairs (i, i + head_dim/2) pairs (Gemma 4)
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
  bool v_norm = false;           // RMSNorm without scale over each v head (Gemma 4)
  bool layer_out_scale = false;  // residual stream × blk.N.layer_output_scale after each layer (Gemma 4)
  float attn_scale = 0.0f;       // q·k scale; 0 = 1/sqrt(head_dim)
  float attn_softcap = 0.0f;     // 0 = off
  float final_softcap = 0.0f;    // tanh soft-capping of logits; 0 = off
  MoeSpec moe;                   // used by layers whose ffn is moe or dense_and_moe
  std::vector<LayerSpec> layers;

  bool has_moe() const;      // any layer with experts

  int max_head_dim() const;
  int max_q_width() const;   // max over layers of n_heads * head_dim
  int max_kv_width() const;  // max over layers of n_kv_heads * head_dim
};

}  // namespace ember::model
