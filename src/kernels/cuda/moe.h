// Mixture-of-experts kernels (docs/moe.md "GPU"). CPU twins: model::route,
// model::group_by_expert and the weighted sum of MoeFfn::forward (model/moe.h), and
// cpu::matmul per expert for the expert GEMV.
//
//   moe_route:   router logits -> per token the k experts and their weights (softmax or
//                sigmoid in double, top-k with ties to the lower index, renormalisation,
//                per-expert scale, weights scale), one warp per token.
//   moe_group:   the (token, slot) pairs grouped by expert: counts, offsets and both index
//                maps computed on the device (one block); prefill runs each expert's
//                matmul over its rows.
//   moe_gather:  the grouped copy of the FFN input (row i = x[token of pair rows[i]]).
//   moe_gemv:    decode (few tokens): one launch per projection over all (token, slot)
//                pairs; each block reads its pair's expert id from device memory (no host
//                sync, CUDA-graph safe) and runs the GEMV row loops of gemv.cu on that
//                expert's matrix (base + expert · expert_bytes). Gated: act(gate) · up.
//   moe_combine: out[t] = Σ_j weight[t][j] · y[pair (t, j)] (+ sigmoid(g[t]) · shared[t]).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/elementwise.h"
#include "quant/types.h"

namespace ember::cuda {

constexpr int kMoeMaxExperts = 1024;
constexpr int kMoeMaxTopK = 32;

struct MoeRouteParams {
  const float* logits = nullptr;  // [n_tokens][n_experts]
  int n_tokens = 0, n_experts = 0, k = 0;
  bool sigmoid = false;     // gating: softmax (false) or sigmoid over the logits
  bool norm_topk = true;    // renormalise the k weights to sum to 1
  float weights_scale = 1.0f;
  const float* per_expert_scale = nullptr;  // [n_experts] or null
  int32_t* experts = nullptr;  // [n_tokens][k], descending probability
  float* weights = nullptr;    // [n_tokens][k]
};
Status moe_route(const MoeRouteParams& p, cudaStream_t stream);

struct MoeGroupParams {
  const int32_t* experts = nullptr;  // [n_pairs] (pair i = token i / k, slot i % k)
  int n_pairs = 0, n_experts = 0;
  int32_t* offsets = nullptr;  // [n_experts + 1]: expert e owns grouped rows [offsets[e], offsets[e + 1])
  int32_t* rows = nullptr;     // [n_pairs]: the pair at each grouped row (in pair order within an expert)
  int32_t* where = nullptr;    // [n_pairs]: the grouped row of each pair
};
Status moe_group(const MoeGroupParams& p, cudaStream_t stream);

struct MoeGatherParams {
  const float* x = nullptr;     // [n_tokens][n]
  const int32_t* rows = nullptr;  // [n_pairs] pair index per grouped row
  int n_pairs = 0, k = 1;
  int64_t n = 0;                // row length, multiple of 4
  float* y = nullptr;           // [n_pairs][n]: y[i] = x[rows[i] / k]
};
Status moe_gather(const MoeGatherParams& p, cudaStream_t stream);

struct MoeGemvParams {
  quant::Type w_type = quant::Type::Q8_0;
  const void* w = nullptr;   // expert 0's matrix; expert e at w + e * expert_bytes (16-byte aligned)
  const void* w_up = nullptr;  // gated: the up projection's experts, same layout
  int64_t n_in = 0, n_out = 0, row_bytes = 0, expert_bytes = 0;  // row_bytes: the row stride
  int n_experts = 0;
  bool gated = false;        // y = act(x · gateᵀ) · (x · upᵀ)
  GatedAct act = GatedAct::silu;
  const int32_t* experts = nullptr;  // [n_pairs] device expert ids
  int n_pairs = 0;
  int x_div = 1;             // pair i reads activation row i / x_div (k: the shared FFN input; 1: its own)
  const float* x = nullptr;    // F16/BF16: f32 rows [n_pairs / x_div][n_in], 16-byte aligned
  const int8_t* xq = nullptr;  // block formats: quantize_q8 rows and their scales
  const float* xd = nullptr;
  float* y = nullptr;          // [n_pairs][n_out]
  // Programmatic dependent launch: weight loads overlap the previous kernel, which must not
  // be the one that wrote `experts` (ids are read before the wait).
  bool pdl = false;
};
// True when moe_gemv has a kernel for rows of n_in of type t (rows padded to 16 bytes).
bool moe_gemv_supported(quant::Type t, int64_t n_in);
// The row stride moe_gemv needs for rows of n_in of type t: the row size rounded up to 16.
int64_t moe_gemv_row_stride(quant::Type t, int64_t n_in);
Status moe_gemv(const MoeGemvParams& p, cudaStream_t stream);

struct MoeCombineParams {
  const float* y = nullptr;        // [n_pairs][n] expert outputs
  const int32_t* where = nullptr;  // [n_pairs] row of y holding pair i, or null (row i)
  const float* weights = nullptr;  // [n_tokens][k]
  const float* shared = nullptr;   // [n_tokens][n] shared expert output, or null
  const float* shared_gate = nullptr;  // [n_tokens] gate logits (sigmoid applied), or null (gate 1)
  int n_tokens = 0, k = 0;
  int64_t n = 0;
  float* out = nullptr;            // [n_tokens][n]
};
Status moe_combine(const MoeCombineParams& p, cudaStream_t stream);

}  // namespace ember::cuda
