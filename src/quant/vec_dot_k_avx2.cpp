// AVX2 dot products of the K-quants (Q2_K..Q6_K) with Q8_K activations. Per
// super-block: the sub-block scales are unpacked with a few word operations into a
// vector of int16, each 32-quant slice is dotted with maddubs and weighted by its
// scales with madd, and the constant offsets (mins, the -4 of Q3_K, the -32 of Q6_K)
// are applied once through the activation's 16-element sums (bsums).
#include "quant/vec_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include <cstring>

#include "quant/blocks.h"
#include "quant/simd_avx2.h"

namespace ember::quant {

using namespace avx2;

namespace {

constexpr uint32_t kLow2 = 0x03030303, kLow4 = 0x0f0f0f0f, kLow6 = 0x3f3f3f3f;

// Shuffle masks over a vector holding 8 int16 scales in both 128-bit lanes.
// same_scale(j): scale j in both lanes (a sub-block of 32 quants).
__m256i same_scale(int j) { return _mm256_set1_epi16(short((2 * j + 1) << 8 | 2 * j)); }
// pair_scales(k): scale 2k in the low lane, 2k+1 in the high lane (two sub-blocks of
// 16 quants side by side in one 32-quant slice).
__m256i pair_scales(int k) {
  return _mm256_set_m128i(_mm_set1_epi16(short((4 * k + 3) << 8 | (4 * k + 2))),
                          _mm_set1_epi16(short((4 * k + 1) << 8 | 4 * k)));
}

// Eight bytes (scales of one half super-block) as int16 in both lanes.
__m256i widen_signed(__m128i bytes) { return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(bytes)); }
__m256i widen_unsigned(__m128i bytes) { return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(bytes)); }

// sum_j scales[j] * bsums[j] over 16 sub-blocks (16 signed byte scales).
int scaled_bsums(__m128i scales, const int16_t* bsums) {
  return hsum_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(scales), load256(bsums)));
}

// One 32-quant slice: maddubs(q, a) weighted by the int16 scales, as 8 int32 sums.
__m256i scaled_slice(__m256i q, const int8_t* a, __m256i scales) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load256(a)), scales);
}

float dot_q2_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i packed = load128(w[i].scales);
    const __m128i scales = _mm_and_si128(packed, m4);
    const __m128i mins = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 2; ++c) {
      const __m256i qv = load256(w[i].qs + 32 * c);
      const __m256i half_scales = widen_unsigned(c == 0 ? scales : _mm_srli_si128(scales, 8));
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), m3);
        const __m256i s = _mm256_shuffle_epi8(half_scales, pair_scales(j));
        sumi = _mm256_add_epi32(sumi, scaled_slice(q, a[i].qs + 128 * c + 32 * j, s));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * from_fp16(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    offsets += a[i].d * from_fp16(w[i].dmin) * float(scaled_bsums(mins, a[i].bsums));
  }
  return hsum_ps(acc) - offsets;
}

// The 16 Q3_K scales (-32..31) as signed bytes; see block_q3_k for the packing.
__m128i q3_k_scales(const uint8_t* packed) {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  const uint32_t s0 = (u[0] & kLow4) | (u[2] & kLow2) << 4;
  const uint32_t s1 = (u[1] & kLow4) | ((u[2] >> 2) & kLow2) << 4;
  const uint32_t s2 = ((u[0] >> 4) & kLow4) | ((u[2] >> 4) & kLow2) << 4;
  const uint32_t s3 = ((u[1] >> 4) & kLow4) | ((u[2] >> 6) & kLow2) << 4;
  return _mm_sub_epi8(_mm_setr_epi32(int(s0), int(s1), int(s2), int(s3)), _mm_set1_epi8(32));
}

float dot_q3_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i scales = q3_k_scales(w[i].scales);
    // q = low2 + 4 * hbit - 4: dot the unsigned low2 + 4 * hbit, subtract 4 * sum(a).
    const __m256i hm = load256(w[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 2; ++c) {
      const __m256i qv = load256(w[i].qs + 32 * c);
      const __m256i half_scales = widen_signed(c == 0 ? scales : _mm_srli_si128(scales, 8));
      for (int j = 0; j < 4; ++j) {
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), m3);
        const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * c + j), m1);
        const __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(hbit, 2));
        const __m256i s = _mm256_shuffle_epi8(half_scales, pair_scales(j));
        sumi = _mm256_add_epi32(sumi, scaled_slice(q, a[i].qs + 128 * c + 32 * j, s));
      }
    }
    const int correction = 4 * scaled_bsums(scales, a[i].bsums);
    sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(correction, 0, 0, 0, 0, 0, 0, 0));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * from_fp16(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc);
}

// Q4_K/Q5_K: the 8 six-bit scales as int16 in both lanes, and sum_j min_j * bsum(j)
// where bsum(j) covers the 32 activations of sub-block j.
struct K4Scales {
  __m256i scales;
  int min_sum;
};

K4Scales k4_scales(const uint8_t* packed, const int16_t* bsums) {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  const uint32_t sc_lo = u[0] & kLow6, mn_lo = u[1] & kLow6;
  const uint32_t sc_hi = (u[2] & kLow4) | ((u[0] >> 6) & kLow2) << 4;
  const uint32_t mn_hi = ((u[2] >> 4) & kLow4) | ((u[1] >> 6) & kLow2) << 4;
  const __m128i mins = _mm_cvtepu8_epi16(_mm_setr_epi32(int(mn_lo), int(mn_hi), 0, 0));
  const __m128i bsum32 = _mm_hadd_epi16(load128(bsums), load128(bsums + 8));
  return {widen_unsigned(_mm_setr_epi32(int(sc_lo), int(sc_hi), 0, 0)),
          hsum_epi32(_mm_madd_epi16(mins, bsum32))};
}

float dot_q4_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const K4Scales k = k4_scales(w[i].scales, a[i].bsums);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i qv = load256(w[i].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(qv, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
      const __m256i s_lo = _mm256_shuffle_epi8(k.scales, same_scale(2 * c));
      const __m256i s_hi = _mm256_shuffle_epi8(k.scales, same_scale(2 * c + 1));
      sumi = _mm256_add_epi32(sumi, scaled_slice(lo, a[i].qs + 64 * c, s_lo));
      sumi = _mm256_add_epi32(sumi, scaled_slice(hi, a[i].qs + 64 * c + 32, s_hi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * from_fp16(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    offsets += a[i].d * from_fp16(w[i].dmin) * float(k.min_sum);
  }
  return hsum_ps(acc) - offsets;
}

float dot_q5_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  const __m256i m4 = _mm256_set1_epi8(15), m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const K4Scales k = k4_scales(w[i].scales, a[i].bsums);
    const __m256i qh = load256(w[i].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i qv = load256(w[i].qs + 32 * c);
      const __m256i h_lo = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m1);
      const __m256i h_hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m1);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), _mm256_slli_epi16(h_lo, 4));
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
                                         _mm256_slli_epi16(h_hi, 4));
      const __m256i s_lo = _mm256_shuffle_epi8(k.scales, same_scale(2 * c));
      const __m256i s_hi = _mm256_shuffle_epi8(k.scales, same_scale(2 * c + 1));
      sumi = _mm256_add_epi32(sumi, scaled_slice(lo, a[i].qs + 64 * c, s_lo));
      sumi = _mm256_add_epi32(sumi, scaled_slice(hi, a[i].qs + 64 * c + 32, s_hi));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * from_fp16(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    offsets += a[i].d * from_fp16(w[i].dmin) * float(k.min_sum);
  }
  return hsum_ps(acc) - offsets;
}

float dot_q6_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i scales = load128(w[i].scales);
    // q - 32: dot the unsigned q (0..63), subtract 32 * sum_j scale_j * bsum_j.
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(w[i].ql + 64 * h);
      const __m256i ql1 = load256(w[i].ql + 64 * h + 32);
      const __m256i qh = load256(w[i].qh + 32 * h);
      const __m256i half_scales = widen_signed(h == 0 ? scales : _mm_srli_si128(scales, 8));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m2));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
      for (int k = 0; k < 4; ++k) {
        const __m256i s = _mm256_shuffle_epi8(half_scales, pair_scales(k));
        sumi = _mm256_add_epi32(sumi, scaled_slice(q[k], a[i].qs + 128 * h + 32 * k, s));
      }
    }
    const int correction = 32 * scaled_bsums(scales, a[i].bsums);
    sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(correction, 0, 0, 0, 0, 0, 0, 0));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * from_fp16(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc);
}

}  // namespace

VecDotFn vec_dot_fn_k_avx2(Type weight) {
  switch (weight) {
    case Type::Q2_K: return dot_q2_k;
    case Type::Q3_K: return dot_q3_k;
    case Type::Q4_K: return dot_q4_k;
    case Type::Q5_K: return dot_q5_k;
    case Type::Q6_K: return dot_q6_k;
    default: return nullptr;
  }
}

}  // namespace ember::quant

#else  // no AVX2: vec_dot falls back to the scalar kernels

namespace ember::quant {
VecDotFn vec_dot_fn_k_avx2(Type) { return nullptr; }
}  // namespace ember::quant

#endif
