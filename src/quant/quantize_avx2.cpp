// AVX2 activation quantizers (Q8_0, Q8_1, Q8_K): bit-identical to the scalar
// quantize_row (same scale, same round-to-nearest-even, same clamp to -127..127);
// they run once per activation row in every matmul.
#include "quant/vec_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/simd_avx2.h"

namespace ember::quant {

using avx2::hsum_epi32;

namespace {

float absmax(const float* x, int n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 values: q = clamp(round(x * id), -127, 127), in element order.
__m256i quantize32(const float* x, float id) {
  const __m256 scale = _mm256_set1_ps(id);
  __m256i v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), scale));
  // packs work per 128-bit lane; the permute restores element order.
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_max_epi8(ordered, _mm256_set1_epi8(-127));
}

// Eight int32 sums of four consecutive quants.
__m256i sum_by_four(__m256i q) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
}

void quantize_q8_0(const float* x, block_q8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(absmax(x, kQK) / 127.0f);
    const float d = _cvtsh_ss(b[i].d);
    const __m256i q = quantize32(x, d != 0.0f ? 1.0f / d : 0.0f);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), q);
  }
}

void quantize_q8_1(const float* x, block_q8_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(absmax(x, kQK) / 127.0f);
    const float d = _cvtsh_ss(b[i].d);
    const __m256i q = quantize32(x, d != 0.0f ? 1.0f / d : 0.0f);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), q);
    b[i].s = fp32_to_fp16(d * float(hsum_epi32(sum_by_four(q))));
  }
}

void quantize_q8_k(const float* x, block_q8_k* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    b[i].d = absmax(x, kQK_K) / 127.0f;
    const float id = b[i].d != 0.0f ? 1.0f / b[i].d : 0.0f;
    for (int c = 0; c < kQK_K / 32; ++c) {
      const __m256i q = quantize32(x + 32 * c, id);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs + 32 * c), q);
      // per 128-bit lane: sum of its 16 quants
      __m256i s = sum_by_four(q);
      s = _mm256_hadd_epi32(s, s);
      s = _mm256_hadd_epi32(s, s);
      b[i].bsums[2 * c] = int16_t(_mm256_extract_epi32(s, 0));
      b[i].bsums[2 * c + 1] = int16_t(_mm256_extract_epi32(s, 4));
    }
  }
}

}  // namespace

bool quantize_activation_avx2(Type act_type, const float* x, void* dst, int64_t n) {
  switch (act_type) {
    case Type::Q8_0: quantize_q8_0(x, static_cast<block_q8_0*>(dst), n / kQK); return true;
    case Type::Q8_1: quantize_q8_1(x, static_cast<block_q8_1*>(dst), n / kQK); return true;
    case Type::Q8_K: quantize_q8_k(x, static_cast<block_q8_k*>(dst), n / kQK_K); return true;
    default: return false;
  }
}

}  // namespace ember::quant

#else  // no AVX2: the scalar quantize_row is used

namespace ember::quant {
bool quantize_activation_avx2(Type, const float*, void*, int64_t) { return false; }
}  // namespace ember::quant

#endif
