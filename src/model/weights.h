// Weights of a decoder as views into the mapped model file (matrices) plus small
// owned f32 vectors (norm scales, biases). Every shape is checked against the spec.
// Tensors are looked up by their GGUF names; other formats (Hugging Face safetensors,
// model/archs/hf.h) translate their names into these through a TensorSource.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "formats/gguf/gguf.h"
#include "model/spec.h"
#include "quant/types.h"

namespace ember::model {

// One factor of a Linear's low-rank branch: rows of F32 or BF16 (owned by whoever owns the
// Linear's data, e.g. the Model's HfTensors, or mapped from the file).
struct LowRankFactor {
  quant::Type type = quant::Type::F32;
  const void* data = nullptr;
};

// y = x · Wᵀ (+ bias), W stored as n_out rows of n_in elements. Quantized checkpoints add
// (all optional, see docs/quant.md):
//   x' = x ⊙ pre_quant_scale                    (ModelOpt NVFP4_SVD; else x' = x)
//   y  = (x' · Wᵀ) · scale + (x' · Aᵀ) · Bᵀ + bias
// with `scale` the per-tensor NVFP4 global scale and A = lowrank_a [rank][n_in],
// B = lowrank_b [n_out][rank] the low-rank ("decomposed linear") compensation.
struct Linear {
  std::string name;
  quant::Type type = quant::Type::F32;
  const void* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  int64_t row_bytes = 0;
  std::vector<float> bias;  // empty: none
  float scale = 1.0f;       // multiplies x · Wᵀ (the NVFP4 global scale)
  LowRankFactor lowrank_a;  // [rank][n_in]
  LowRankFactor lowrank_b;  // [n_out][rank]
  int64_t rank = 0;         // 0: no low-rank branch
  std::vector<float> pre_quant_scale;  // [n_in]; empty: none

  bool present() const { return data != nullptr; }
  bool has_lowrank() const { return rank > 0; }
  // True when the Linear is more than the plain y = x · Wᵀ (+ bias) of a GGUF file.
  bool has_extras() const { return scale != 1.0f || has_lowrank() || !pre_quant_scale.empty(); }
  const uint8_t* row(int64_t i) const { return static_cast<const uint8_t*>(data) + i * row_bytes; }
};

// A mixture-of-experts FFN (docs/moe.md). Expert e's projections are plain Linears: views
// into a 3-D GGUF tensor (one slice per expert, strides from the tensor), or one tensor per
// expert (Hugging Face, legacy GGUF), each with its own NVFP4 global scale when quantized.
struct MoeWeights {
  Linear router;                          // ffn_gate_inp: [n_experts][n_embd]
  std::vector<Linear> gate, up, down;     // [n_experts]: [n_ff_exp][n_embd], same, [n_embd][n_ff_exp]
  Linear shexp_gate, shexp_up, shexp_down;  // shared expert (optional)
  Linear shexp_gate_inp;                  // [1][n_embd] sigmoid gate of the shared expert (optional)
  std::vector<float> router_scale;        // [n_embd] (Gemma 4)
  std::vector<float> per_expert_scale;    // [n_experts] (Gemma 4)
  std::vector<float> pre_norm;            // [n_embd] norm of the experts' input (Gemma 4 pre_ffw_norm_2)
  std::vector<float> post_norm;           // [n_embd] norm of the experts' output (Gemma 4 post_ffw_norm_2)
  std::vector<float> dense_post_norm;     // [n_embd] norm of the parallel dense MLP's output (post_ffw_norm_1)
  // Every Linear of the block (for code that visits them all, e.g. quantization extras).
  std::vector<Linear*> linears();
};

struct LayerWeights {
  std::vector<float> attn_norm, q_norm, k_norm, post_attn_norm;  // [n_embd] / [head_dim]
  std::vector<float> ffn_norm, post_ffn_norm;                    // [n_embd]
  Linear wq, wk, wv, wo;                                          // attention projections
  Linear w_gate, w_up, w_down;                                    // gated FFN
  MoeWeights moe;                                                 // ffn kind moe / dense_and_moe
  std::vector<float> layer_out_scale;                             // [1] (Gemma 4 layer_scalar)
};

struct Weights {
  Linear token_embd;             // [n_vocab rows][n_embd]
  std::vector<float> output_norm;
  Linear output;                 // lm_head; a copy of token_embd's view when tied
  std::vector<LayerWeights> layers;
  uint64_t n_bytes = 0;          // bytes of all tensors used
};

// One tensor as the loader sees it, whatever file holds it.
struct TensorRef {
  quant::Type type = quant::Type::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the contiguous dimension
  int64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const void* data = nullptr;  // stays valid while the source lives
};

// Tensors by GGUF name ("blk.0.attn_q.weight"); name() labels errors.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::optional<TensorRef> find(std::string_view gguf_name) const = 0;
  virtual const std::string& name() const = 0;
  // How errors spell a tensor (the source's own name for it).
  virtual std::string display_name(std::string_view gguf_name) const { return std::string(gguf_name); }
};

Expected<Weights> load_weights(const gguf::File& file, const ModelSpec& spec);
Expected<Weights> load_weights(const TensorSource& source, const ModelSpec& spec);

}  // namespace ember::model
