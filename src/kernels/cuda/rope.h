// Rotary position embedding on the GPU, in place. CPU twin: cpu::rope (kernels/cpu/ops.h).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

struct RopeParams {
  float* x = nullptr;                // [n_tokens][row_stride], heads contiguous from column 0
  int64_t row_stride = 0;            // elements between tokens (>= n_heads * head_dim)
  const int32_t* positions = nullptr;  // device: [n_tokens]
  int n_tokens = 0;
  int n_heads = 0;
  int head_dim = 0;                  // rotated dims == head_dim (even)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;           // linear scaling: position * freq_scale
  bool neox = false;                 // pairs (i, i + d/2) instead of (2i, 2i + 1)
};

Status rope(const RopeParams& p, cudaStream_t stream);

// The attention block's step between the q/k/v projections and attention, in one launch:
// rope on q and k (as rope() above), then k and v written to the f16 cache at row
// positions[t] for token t. CPU twin: cpu::rope + the decoder's cache write.
struct RopeStoreParams {
  float* q = nullptr;                  // [n_tokens][n_heads * head_dim], roped in place
  float* k = nullptr;                  // [n_tokens][n_kv_heads * head_dim], roped in place
  const float* v = nullptr;            // [n_tokens][n_kv_heads * head_dim]
  __half* k_cache = nullptr;           // [n_ctx][n_kv_heads * head_dim]
  __half* v_cache = nullptr;
  const int32_t* positions = nullptr;  // device: [n_tokens], also the cache rows
  int n_tokens = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  bool neox = false;
};

Status rope_store(const RopeStoreParams& p, cudaStream_t stream);

}  // namespace ember::cuda
