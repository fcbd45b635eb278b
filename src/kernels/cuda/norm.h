// RMSNorm on the GPU. CPU twin: cpu::rms_norm (kernels/cpu/ops.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

struct RmsNormParams {
  const float* x = nullptr;  // [n_rows][n_cols]
  const float* w = nullptr;  // [n_cols], may be null
  float* y = nullptr;        // [n_rows][n_cols]
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  float eps = 1e-6f;
};

Status rms_norm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace ember::cuda
