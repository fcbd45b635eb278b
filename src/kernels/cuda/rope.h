// Rotary position embedding on the GPU, in place. CPU twin: cpu::rope (kernels/cpu/ops.h).
#pragma once
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

}  // namespace ember::cuda
