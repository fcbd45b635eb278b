// Dot products of one weight row with one activation row, the inner loop of the CPU
// matmul. The activation is first quantized to vec_dot_type(weight) (once per row),
// then dotted block by block with integer arithmetic as ggml does:
//   Q4_0, Q5_0, Q8_0 -> Q8_0;  Q4_1, Q5_1 -> Q8_1;  Q2_K..Q6_K -> Q8_K;
//   MXFP4 -> Q8_0 (E2M1 values doubled are int8);
//   F32, F16, BF16, NVFP4 -> F32 (the activation is used as is; NVFP4 rows may be any
//   multiple of 16 long, which Q8_0's blocks of 32 would not allow).
#pragma once
#include <cstdint>

#include "quant/types.h"

namespace ember::quant {

Type vec_dot_type(Type weight);

// Quantizes n activations (a multiple of act_type's block size) into dst
// (row_bytes(act_type, n) bytes). F32 is a plain copy.
void quantize_activation(Type act_type, const float* x, void* dst, int64_t n);

// dot(weight row, activation row) over n elements. The activation row is in
// vec_dot_type(weight). Uses the AVX2 kernel where one was compiled, else scalar.
float vec_dot(Type weight, const void* w_row, const void* act_row, int64_t n);

// The portable scalar kernel, always available (tests compare it with vec_dot).
float vec_dot_scalar(Type weight, const void* w_row, const void* act_row, int64_t n);

// The kernel vec_dot would use, for callers that dot many rows of one type.
using VecDotFn = float (*)(const void* w_row, const void* act_row, int64_t n);
VecDotFn vec_dot_fn(Type weight);
VecDotFn vec_dot_fn_scalar(Type weight);

// True when vec_dot runs a SIMD kernel for this weight type.
bool vec_dot_has_simd(Type weight);

// Internal: the AVX2 kernel of a type, or nullptr (defined in vec_dot_avx2.cpp; the
// K-quant ones in vec_dot_k_avx2.cpp).
VecDotFn vec_dot_fn_avx2(Type weight);
VecDotFn vec_dot_fn_k_avx2(Type weight);
VecDotFn vec_dot_fn_fp4_avx2(Type weight);  // vec_dot_fp4_avx2.cpp
// Internal: AVX2 activation quantizer; false when none (quantize_avx2.cpp).
bool quantize_activation_avx2(Type act_type, const float* x, void* dst, int64_t n);

}  // namespace ember::quant
