// Reference dequantization of one row of any CPU-computable format.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace ember::quant {

// dst[0..n) = the values stored in src. n must be a multiple of the type's block
// size. Supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K,
// MXFP4 and NVFP4 (the block values only: a tensor's NVFP4 global scale is applied by the caller).
void dequantize_row(Type type, const void* src, float* dst, int64_t n);

}  // namespace ember::quant
