// Reference (scalar) quantizers: used by tests, by the random-model generator and as
// the activation quantizers of the CPU dot products. The K-quant quantizers search a
// few candidate scales per sub-block; they are not bit-identical to llama.cpp's.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace ember::quant {

// Quantizes n floats (a multiple of the type's block size) into dst, which holds
// row_bytes(type, n) bytes. Supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, MXFP4, NVFP4 (global scale 1; quant/fp4.h takes one).
void quantize_row(Type type, const float* src, void* dst, int64_t n);

}  // namespace ember::quant
