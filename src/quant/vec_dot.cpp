// Scalar dot products (the reference the AVX2 kernels are tested against) and the
// activation-type mapping.
#include "quant/vec_dot.h"

#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/fp4.h"
#include "quant/quantize.h"

namespace ember::quant {

namespace {

// Sum of w[i] * a[i] over the 32 elements of a simple block whose quants are given in
// natural order.
int dot32(const int8_t* w, const int8_t* a) {
  int sum = 0;
  for (int i = 0; i < kQK; ++i) sum += int(w[i]) * int(a[i]);
  return sum;
}

// Unpacks the 4-bit (and optional 5th bit) quants of a simple block to natural order.
void unpack_nibbles(const uint8_t* qs, uint32_t qh, int offset, int8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = int8_t(((qs[j] & 15) | ((qh >> j) & 1) << 4) - offset);
    q[j + 16] = int8_t(((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - offset);
  }
}

uint32_t load_qh(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

float dot_q4_0(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int8_t q[kQK];
    unpack_nibbles(w[i].qs, 0, 8, q);
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_q5_0(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int8_t q[kQK];
    unpack_nibbles(w[i].qs, load_qh(w[i].qh), 16, q);
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(dot32(q, a[i].qs));
  }
  return sum;
}

float dot_q8_0(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q8_0*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i)
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(dot32(w[i].qs, a[i].qs));
  return sum;
}

// sum (q*d + m) * a = d * da * sum(q*qa) + m * s, where s = da * sum(qa).
float dot_q4_1(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_1*>(vw);
  const auto* a = static_cast<const block_q8_1*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int8_t q[kQK];
    unpack_nibbles(w[i].qs, 0, 0, q);
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(dot32(q, a[i].qs)) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return sum;
}

float dot_q5_1(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_1*>(vw);
  const auto* a = static_cast<const block_q8_1*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int8_t q[kQK];
    unpack_nibbles(w[i].qs, load_qh(w[i].qh), 0, q);
    sum += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * float(dot32(q, a[i].qs)) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return sum;
}

// Sum over 16 elements of q * a.
int dot16(const int8_t* q, const int8_t* a) {
  int sum = 0;
  for (int i = 0; i < 16; ++i) sum += int(q[i]) * int(a[i]);
  return sum;
}

float dot_q2_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int e = 0; e < kQK_K; ++e)
      q[e] = int8_t((w[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += (w[i].scales[j] & 15) * dot16(q + 16 * j, a[i].qs + 16 * j);
      summ += (w[i].scales[j] >> 4) * a[i].bsums[j];
    }
    sum += a[i].d * (fp16_to_fp32(w[i].d) * float(sumi) - fp16_to_fp32(w[i].dmin) * float(summ));
  }
  return sum;
}

float dot_q3_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K], scales[16];
    unpack_scales_q3_k(w[i].scales, scales);
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low = (w[i].qs[32 * c + l] >> (2 * j)) & 3;
      q[e] = int8_t(low - (((w[i].hmask[l] >> (4 * c + j)) & 1) ? 0 : 4));
    }
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += scales[j] * dot16(q + 16 * j, a[i].qs + 16 * j);
    sum += a[i].d * fp16_to_fp32(w[i].d) * float(sumi);
  }
  return sum;
}

// Shared by Q4_K and Q5_K once the quants are unpacked to natural order.
float dot_k4_block(const uint8_t* packed, float d, float dmin, const int8_t* q,
                   const block_q8_k& a) {
  int sumi = 0, summ = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(packed, j, &sc, &m);
    sumi += sc * (dot16(q + 32 * j, a.qs + 32 * j) + dot16(q + 32 * j + 16, a.qs + 32 * j + 16));
    summ += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  }
  return a.d * (d * float(sumi) - dmin * float(summ));
}

float dot_q4_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q4_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = int8_t(w[i].qs[32 * c + l] & 15);
        q[64 * c + 32 + l] = int8_t(w[i].qs[32 * c + l] >> 4);
      }
    sum += dot_k4_block(w[i].scales, fp16_to_fp32(w[i].d), fp16_to_fp32(w[i].dmin), q, a[i]);
  }
  return sum;
}

float dot_q5_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q5_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t qs = w[i].qs[32 * c + l], qh = w[i].qh[l];
        q[64 * c + l] = int8_t((qs & 15) | ((qh >> (2 * c)) & 1) << 4);
        q[64 * c + 32 + l] = int8_t((qs >> 4) | ((qh >> (2 * c + 1)) & 1) << 4);
      }
    sum += dot_k4_block(w[i].scales, fp16_to_fp32(w[i].d), fp16_to_fp32(w[i].dmin), q, a[i]);
  }
  return sum;
}

float dot_q6_k(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_k*>(vw);
  const auto* a = static_cast<const block_q8_k*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w[i].ql + 64 * h;
      const uint8_t* qh = w[i].qh + 32 * h;
      int8_t* out = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        out[l] = int8_t(((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32);
        out[l + 32] = int8_t(((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
        out[l + 64] = int8_t(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
        out[l + 96] = int8_t(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
      }
    }
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += w[i].scales[j] * dot16(q + 16 * j, a[i].qs + 16 * j);
    sum += a[i].d * fp16_to_fp32(w[i].d) * float(sumi);
  }
  return sum;
}

float dot_f32(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  const auto* a = static_cast<const float*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * a[i];
  return sum;
}

float dot_f16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(w[i]) * a[i];
  return sum;
}

float dot_bf16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* a = static_cast<const float*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(w[i]) * a[i];
  return sum;
}

}  // namespace

Type vec_dot_type(Type weight) {
  switch (weight) {
    case Type::F32:
    case Type::F16:
    case Type::BF16:
    case Type::NVFP4: return Type::F32;
    case Type::Q4_0:
    case Type::Q5_0:
    case Type::Q8_0:
    case Type::MXFP4: return Type::Q8_0;
    case Type::Q4_1:
    case Type::Q5_1: return Type::Q8_1;
    case Type::Q2_K:
    case Type::Q3_K:
    case Type::Q4_K:
    case Type::Q5_K:
    case Type::Q6_K: return Type::Q8_K;
    default: EMBER_CHECK(false && "vec_dot_type: unsupported weight type"); return Type::F32;
  }
}

void quantize_activation(Type act_type, const float* x, void* dst, int64_t n) {
  EMBER_CHECK(act_type == Type::F32 || act_type == Type::Q8_0 || act_type == Type::Q8_1 ||
              act_type == Type::Q8_K);
  EMBER_CHECK(n % traits(act_type).block_size == 0);
  if (quantize_activation_avx2(act_type, x, dst, n)) return;
  quantize_row(act_type, x, dst, n);
}

VecDotFn vec_dot_fn_scalar(Type weight) {
  switch (weight) {
    case Type::F32: return dot_f32;
    case Type::F16: return dot_f16;
    case Type::BF16: return dot_bf16;
    case Type::Q4_0: return dot_q4_0;
    case Type::Q4_1: return dot_q4_1;
    case Type::Q5_0: return dot_q5_0;
    case Type::Q5_1: return dot_q5_1;
    case Type::Q8_0: return dot_q8_0;
    case Type::Q2_K: return dot_q2_k;
    case Type::Q3_K: return dot_q3_k;
    case Type::Q4_K: return dot_q4_k;
    case Type::Q5_K: return dot_q5_k;
    case Type::Q6_K: return dot_q6_k;
    case Type::MXFP4: return vec_dot_mxfp4_q8_0;
    case Type::NVFP4: return vec_dot_nvfp4_f32;
    default: EMBER_CHECK(false && "vec_dot: unsupported weight type"); return nullptr;
  }
}

VecDotFn vec_dot_fn(Type weight) {
  if (VecDotFn fn = vec_dot_fn_avx2(weight)) return fn;
  return vec_dot_fn_scalar(weight);
}

bool vec_dot_has_simd(Type weight) { return vec_dot_fn_avx2(weight) != nullptr; }

float vec_dot(Type weight, const void* w_row, const void* act_row, int64_t n) {
  EMBER_CHECK(n % traits(weight).block_size == 0);
  return vec_dot_fn(weight)(w_row, act_row, n);
}

float vec_dot_scalar(Type weight, const void* w_row, const void* act_row, int64_t n) {
  EMBER_CHECK(n % traits(weight).block_size == 0);
  return vec_dot_fn_scalar(weight)(w_row, act_row, n);
}

}  // namespace ember::quant
