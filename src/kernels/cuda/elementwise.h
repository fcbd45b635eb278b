// Element-wise kernels. CPU twins: cpu::silu_mul, cpu::gelu_tanh_mul (kernels/cpu/ops.h);
// the others are one-line loops in CpuDecoder.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

enum class GatedAct { silu, gelu_tanh };

struct GatedActParams {
  const float* gate = nullptr;  // [n]
  const float* up = nullptr;    // [n]
  float* y = nullptr;           // [n], may alias gate
  int64_t n = 0;
  GatedAct act = GatedAct::silu;
};
Status gated_act(const GatedActParams& p, cudaStream_t stream);  // y = act(gate) * up

struct AddParams {
  float* x = nullptr;        // [n], x += y
  const float* y = nullptr;  // [n]
  int64_t n = 0;
};
Status add(const AddParams& p, cudaStream_t stream);

struct AddBiasParams {
  float* y = nullptr;        // [n_rows][n_cols]
  const float* b = nullptr;  // [n_cols]
  int64_t n_rows = 0, n_cols = 0;
};
Status add_bias(const AddBiasParams& p, cudaStream_t stream);

struct SoftcapParams {
  float* x = nullptr;  // [n], x = cap * tanh(x / cap)
  int64_t n = 0;
  float cap = 0.0f;
};
Status softcap(const SoftcapParams& p, cudaStream_t stream);

struct ConvertParams {
  const float* x = nullptr;  // [n]
  __half* y = nullptr;       // [n], round to nearest
  int64_t n = 0;
};
Status convert_f32_to_f16(const ConvertParams& p, cudaStream_t stream);

}  // namespace ember::cuda
