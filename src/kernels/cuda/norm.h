// RMSNorm on the GPU. CPU twin: cpu::rms_norm (kernels/cpu/ops.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

// Rows of n_cols; also the per-head q/k norm (rows = tokens * heads, n_cols = head_dim).
struct RmsNormParams {
  const float* x = nullptr;  // [n_rows][n_cols]
  const float* w = nullptr;  // [n_cols], may be null
  float* y = nullptr;        // [n_rows][n_cols], may alias x
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  float eps = 1e-6f;
};

Status rms_norm(const RmsNormParams& p, cudaStream_t stream);

// The residual step between decoder blocks, per row:
//   if delta_w: delta = rms_norm(delta) * delta_w   (post-norm, written back in place)
//   x += delta
//   if y:       y = rms_norm(x) * w                 (the next block's input norm)
struct ResidualNormParams {
  float* x = nullptr;              // [n_rows][n_cols] residual stream
  float* delta = nullptr;          // [n_rows][n_cols] block output
  const float* delta_w = nullptr;  // [n_cols] post-norm weight, or null for none
  const float* w = nullptr;        // [n_cols] next norm's weight, may be null (no scale)
  float* y = nullptr;              // [n_rows][n_cols], or null to skip the next norm
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  float eps = 1e-6f;
  // Optional: y also quantized as quantize_q8 does (gemv.h): yq [n_rows][n_cols] int8,
  // yd [n_rows][n_cols / 32]. Needs y, n_cols % 32 == 0 and residual_norm_q8_supported.
  int8_t* yq = nullptr;
  float* yd = nullptr;
};

// True when residual_norm can also write the int8 copy of y for rows of n_cols.
bool residual_norm_q8_supported(int64_t n_cols);

Status residual_norm(const ResidualNormParams& p, cudaStream_t stream);

}  // namespace ember::cuda
