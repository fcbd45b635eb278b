// The 4-bit float formats (see docs/quant.md): MXFP4 (OCP microscaling, ggml id 39) and
// NVFP4 (ember-internal id; blocks of 16 with an FP8 E4M3 scale, plus a per-tensor FP32
// scale kept outside the blocks). Block layouts are in quant/blocks.h. This header holds
// the scalar codecs every FP4 path shares and the row (de)quantizers with an explicit
// global scale; dequantize_row / quantize_row / vec_dot dispatch to them.
#pragma once
#include <cstdint>

namespace ember::quant {

// E2M1 code (bit 3 sign) -> value, and the same doubled as int8 (the integer dots).
inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
inline constexpr int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Nearest E2M1 code of v (ties to the even code, |v| > 6 saturates to ±6).
uint8_t e2m1_encode(float v);

// FP8 E4M3 ("fn": bias 7, no infinities, 0x7f/0xff NaN, max 448) <-> float.
float e4m3_to_float(uint8_t b);
// Round to nearest even, saturating to ±448; NaN -> 0x7f.
uint8_t float_to_e4m3(float f);

// E8M0 (MX shared exponent): 2^(e - 127); 0xff is NaN.
float e8m0_to_float(uint8_t e);

// NVFP4 rows: x[i] = e2m1 · e4m3(block scale) · global. `global` is a multiplier (the
// ModelOpt weight_scale_2 convention); quantize_row(Type::NVFP4, ...) uses global = 1.
void dequantize_row_nvfp4(const void* src, float* dst, int64_t n, float global);
void quantize_row_nvfp4(const float* src, void* dst, int64_t n, float global);
// The global scale the quantizer uses for a tensor of largest magnitude amax:
// amax / (6 · 448), so that the largest block scale is E4M3's maximum (1 for amax = 0).
float nvfp4_global_scale(float amax);

void dequantize_row_mxfp4(const void* src, float* dst, int64_t n);
// Per block, the E8M0 exponent (of the two nearest to amax / 6) with the smaller error.
void quantize_row_mxfp4(const float* src, void* dst, int64_t n);

// Scalar dots: MXFP4 · Q8_0 activations, NVFP4 · F32 activations (without the global).
float vec_dot_mxfp4_q8_0(const void* w, const void* a, int64_t n);
float vec_dot_nvfp4_f32(const void* w, const void* a, int64_t n);

}  // namespace ember::quant
