// AVX2 dots of the FP4 formats. E2M1 codes become int8 (values doubled: 0, 1, 2, 3, 4,
// 6, 8, 12 with sign) through one byte shuffle; MXFP4 then dots them with Q8_0
// activations in integers, NVFP4 converts them to floats and dots them with f32
// activations. Tested against the scalar kernels in fp4.cpp.
#include "quant/vec_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include <cstring>

#include "quant/blocks.h"
#include "quant/fp4.h"
#include "quant/simd_avx2.h"

namespace ember::quant {

using namespace avx2;

namespace {

__m128i e2m1_lut128() { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kE2M1Doubled)); }

// MXFP4 · Q8_0: the low nibbles of qs are elements 0..15, the high ones 16..31.
float dot_mxfp4(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_mxfp4*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  const __m256i lut = _mm256_broadcastsi128_si256(e2m1_lut128());
  const __m256i mask = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m128i b = load128(w[i].qs);
    const __m256i codes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), mask);
    const __m256i q = _mm256_shuffle_epi8(lut, codes);
    const __m256i sums = dot_s8_s8(q, load256(a[i].qs));
    const float d = 0.5f * e8m0_to_float(w[i].e) * from_fp16(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(d), acc);
  }
  return hsum_ps(acc);
}

// NVFP4 · f32: byte j holds elements 2j (low nibble) and 2j + 1 (high nibble).
float dot_nvfp4(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_nvfp4*>(vw);
  const auto* a = static_cast<const float*>(va);
  const __m128i lut = e2m1_lut128();
  const __m128i mask = _mm_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_NV; ++i, a += kQK_NV) {
    int64_t packed;
    std::memcpy(&packed, w[i].qs, 8);
    const __m128i b = _mm_cvtsi64_si128(packed);
    const __m128i lo = _mm_and_si128(b, mask), hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
    const __m128i q = _mm_shuffle_epi8(lut, _mm_unpacklo_epi8(lo, hi));  // 16 int8 in element order
    const __m256 v0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    const __m256 v1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
    __m256 block = _mm256_mul_ps(v0, _mm256_loadu_ps(a));
    block = _mm256_fmadd_ps(v1, _mm256_loadu_ps(a + 8), block);
    acc = _mm256_fmadd_ps(block, _mm256_set1_ps(0.5f * e4m3_to_float(w[i].d)), acc);
  }
  return hsum_ps(acc);
}

}  // namespace

VecDotFn vec_dot_fn_fp4_avx2(Type weight) {
  switch (weight) {
    case Type::MXFP4: return dot_mxfp4;
    case Type::NVFP4: return dot_nvfp4;
    default: return nullptr;
  }
}

}  // namespace ember::quant

#else  // no AVX2: vec_dot falls back to the scalar kernels

namespace ember::quant {
VecDotFn vec_dot_fn_fp4_avx2(Type) { return nullptr; }
}  // namespace ember::quant

#endif
