// AVX2 dot products (weight row · activation row) of the float and simple block
// formats; the K-quants are in vec_dot_k_avx2.cpp. Integer formats use maddubs
// (u8 x s8 -> s16 pairs) and madd (s16 x s16 -> s32 pairs); one float fma per block
// applies the scales. Tested against the scalar kernels in vec_dot.cpp.
#include "quant/vec_dot.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include <cstring>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/simd_avx2.h"

namespace ember::quant {

using namespace avx2;

namespace {

// The 32 quants of a 16-byte nibble array in element order: low nibbles are
// elements 0..15 (low 128-bit lane), high nibbles elements 16..31.
__m256i nibbles32(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

// Byte i = 0xff where bit i of the little-endian 32-bit word at p is set, else 0.
__m256i bytes_from_bits(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(bits)),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                         0x0303030303030303));
  const __m256i select = _mm256_set1_epi64x(0x8040201008040201);
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

// The simple formats (32 elements per block): each kernel gives the 8 int32 partial
// sums of one block's integer dot; dot_simple applies the scales.
struct KernelQ4_0 {
  using W = block_q4_0;
  using A = block_q8_0;
  static constexpr bool kOffset = false;
  static __m256i dot(const W& w, const A& a) {
    const __m256i q = _mm256_sub_epi8(nibbles32(w.qs), _mm256_set1_epi8(8));
    return dot_s8_s8(q, load256(a.qs));
  }
};

struct KernelQ4_1 {
  using W = block_q4_1;
  using A = block_q8_1;
  static constexpr bool kOffset = true;
  static __m256i dot(const W& w, const A& a) { return dot_u8_s8(nibbles32(w.qs), load256(a.qs)); }
};

struct KernelQ5_0 {
  using W = block_q5_0;
  using A = block_q8_0;
  static constexpr bool kOffset = false;
  static __m256i dot(const W& w, const A& a) {
    // q - 16 is the nibble where the 5th bit is set and nibble - 16 (0xf0 | nibble
    // as int8) where it is clear.
    const __m256i clear = _mm256_andnot_si256(bytes_from_bits(w.qh), _mm256_set1_epi8(char(0xf0)));
    return dot_s8_s8(_mm256_or_si256(nibbles32(w.qs), clear), load256(a.qs));
  }
};

struct KernelQ5_1 {
  using W = block_q5_1;
  using A = block_q8_1;
  static constexpr bool kOffset = true;
  static __m256i dot(const W& w, const A& a) {
    const __m256i high = _mm256_and_si256(bytes_from_bits(w.qh), _mm256_set1_epi8(16));
    return dot_u8_s8(_mm256_or_si256(nibbles32(w.qs), high), load256(a.qs));
  }
};

struct KernelQ8_0 {
  using W = block_q8_0;
  using A = block_q8_0;
  static constexpr bool kOffset = false;
  static __m256i dot(const W& w, const A& a) { return dot_s8_s8(load256(w.qs), load256(a.qs)); }
};

// Lane 0: d_w * d_a; lane 1 (offset formats): m_w * s_a. Both blocks start with their
// fp16 scale, followed by m (weight) and s (activation) in the offset formats.
template <bool kOffset>
__m128 block_scales(const void* w, const void* a) {
  uint32_t ws = 0, as = 0;
  std::memcpy(&ws, w, kOffset ? 4 : 2);
  std::memcpy(&as, a, kOffset ? 4 : 2);
  return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(int(ws))), _mm_cvtph_ps(_mm_cvtsi32_si128(int(as))));
}

// Two blocks per iteration into independent accumulators, so consecutive fmas do not
// wait on each other.
template <typename Kernel>
float dot_simple(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const typename Kernel::W*>(vw);
  const auto* a = static_cast<const typename Kernel::A*>(va);
  const int64_t nb = n / kQK;
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m128 offsets[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
  auto step = [&](int64_t i, int k) {
    const __m128 s = block_scales<Kernel::kOffset>(&w[i], &a[i]);
    acc[k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(Kernel::dot(w[i], a[i])), acc[k]);
    if constexpr (Kernel::kOffset) offsets[k] = _mm_add_ps(offsets[k], s);
  };
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    step(i, 0);
    step(i + 1, 1);
  }
  if (i < nb) step(i, 0);
  float sum = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
  if constexpr (Kernel::kOffset) {
    const __m128 o = _mm_add_ps(offsets[0], offsets[1]);
    sum += _mm_cvtss_f32(_mm_shuffle_ps(o, o, 1));
  }
  return sum;
}

// Float weights over n (a multiple of 8) elements: four independent accumulators.
template <typename Load>
float dot_float(const float* a, int64_t n, Load load) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(load(i + 8), _mm256_loadu_ps(a + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(load(i + 16), _mm256_loadu_ps(a + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(load(i + 24), _mm256_loadu_ps(a + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(a + i), acc0);
  return hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

float dot_f32(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  const auto* a = static_cast<const float*>(va);
  const int64_t n8 = n & ~int64_t(7);
  float sum = dot_float(a, n8, [w](int64_t i) { return _mm256_loadu_ps(w + i); });
  for (int64_t i = n8; i < n; ++i) sum += w[i] * a[i];
  return sum;
}

float dot_f16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  const int64_t n8 = n & ~int64_t(7);
  float sum = dot_float(a, n8, [w](int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
  });
  for (int64_t i = n8; i < n; ++i) sum += from_fp16(w[i]) * a[i];
  return sum;
}

float dot_bf16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  const int64_t n8 = n & ~int64_t(7);
  float sum = dot_float(a, n8, [w](int64_t i) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  });
  for (int64_t i = n8; i < n; ++i) sum += bf16_to_fp32(w[i]) * a[i];
  return sum;
}

}  // namespace

VecDotFn vec_dot_fn_avx2(Type weight) {
  switch (weight) {
    case Type::F32: return dot_f32;
    case Type::F16: return dot_f16;
    case Type::BF16: return dot_bf16;
    case Type::Q4_0: return dot_simple<KernelQ4_0>;
    case Type::Q4_1: return dot_simple<KernelQ4_1>;
    case Type::Q5_0: return dot_simple<KernelQ5_0>;
    case Type::Q5_1: return dot_simple<KernelQ5_1>;
    case Type::Q8_0: return dot_simple<KernelQ8_0>;
    case Type::MXFP4:
    case Type::NVFP4: return vec_dot_fn_fp4_avx2(weight);
    default: return vec_dot_fn_k_avx2(weight);
  }
}

}  // namespace ember::quant

#else  // no AVX2: vec_dot falls back to the scalar kernels

namespace ember::quant {
VecDotFn vec_dot_fn_avx2(Type) { return nullptr; }
}  // namespace ember::quant

#endif
