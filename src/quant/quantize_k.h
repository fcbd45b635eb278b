// K-quant quantizers (Q2_K..Q6_K); internal to quantize_row.
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace ember::quant {

// Quantizes nb super-blocks of 256 floats into dst.
void quantize_row_k(Type type, const float* x, void* dst, int64_t nb);

}  // namespace ember::quant
