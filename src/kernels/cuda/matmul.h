// y = x · Wᵀ on the GPU for GGUF weight rows kept in their stored format on the device.
// CPU twin: cpu::matmul (kernels/cpu/matmul.h).
//
//   n_tokens <= kGemvMaxTokens: gemv, one warp per output row reading the blocks
//     directly (16-byte loads where the format's alignment allows), fp32 accumulation;
//   larger batches: x is converted to f16 and cuBLAS multiplies it with the weight with
//     fp32 accumulation: f16 weights as they are, other formats dequantized to f16 into
//     a caller-owned workspace first (w_f16 may be null for f16 weights).
// The bandwidth-tuned decode GEMV for the common formats is gemv.h.
//
// Supported weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K. The row
// length must be a multiple of the type's chunk (8 for float types, 32 / 64 / 128 for
// the block formats) and the weight must start at an address aligned to 16 bytes.
#pragma once
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "quant/types.h"

namespace ember::cuda {

constexpr int kGemvMaxTokens = 8;

struct GemvParams {
  quant::Type w_type = quant::Type::F32;
  const void* w = nullptr;  // device: n_out rows of w_row_bytes
  int64_t n_out = 0;        // N
  int64_t n_in = 0;         // K
  int64_t w_row_bytes = 0;
  const float* x = nullptr;  // device: [n_tokens][n_in], 16-byte aligned
  int n_tokens = 0;          // 1..kGemvMaxTokens
  float* y = nullptr;        // device: [n_tokens][n_out]
};

Status gemv(const GemvParams& p, cudaStream_t stream);

// True when the device kernels can read this weight type.
bool weight_type_supported(quant::Type t);
// Row length multiple required for type t (0 when unsupported).
int weight_row_multiple(quant::Type t);

struct DequantizeParams {
  quant::Type w_type = quant::Type::F32;
  const void* w = nullptr;  // device: n_out rows of w_row_bytes
  int64_t n_out = 0, n_in = 0, w_row_bytes = 0;
  __half* out = nullptr;    // device: [n_out][n_in]
};

Status dequantize_f16(const DequantizeParams& p, cudaStream_t stream);

struct MatmulParams {
  quant::Type w_type = quant::Type::F32;
  const void* w = nullptr;
  int64_t n_out = 0, n_in = 0, w_row_bytes = 0;
  const float* x = nullptr;  // device: [n_tokens][n_in]
  int64_t n_tokens = 0;
  float* y = nullptr;        // device: [n_tokens][n_out]
  // Used when n_tokens > kGemvMaxTokens:
  cublasHandle_t cublas = nullptr;
  __half* w_f16 = nullptr;  // workspace, >= n_out * n_in halves
  __half* x_f16 = nullptr;  // workspace, >= n_tokens * n_in halves
  // x_f16 already holds this x as f16 (the previous matmul read the same x): skip the
  // conversion (q/k/v and gate/up share their input).
  bool x_f16_ready = false;
};

Status matmul(const MatmulParams& p, cudaStream_t stream);

}  // namespace ember::cuda
