#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/fp4.h"
#include "quant/quantize_k.h"

namespace ember::quant {

namespace {

int round_clamp(float v, int lo, int hi) {
  return std::clamp(int(std::lrintf(v)), lo, hi);
}

// The element of largest magnitude, keeping its sign.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); vmax = x[i]; }
  return vmax;
}

// Symmetric block with the extreme value mapped to -half (q - half in -half..half-1):
// the shared scheme of Q4_0 (half = 8) and Q5_0 (half = 16). Returns fp16 d.
uint16_t quantize_symmetric(const float* x, int half, uint8_t* q) {
  const float vmax = signed_absmax(x, kQK);
  const uint16_t d16 = fp32_to_fp16(vmax / float(-half));
  const float d = fp16_to_fp32(d16);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQK; ++i) q[i] = uint8_t(round_clamp(x[i] * id, -half, half - 1) + half);
  return d16;
}

// Asymmetric block x = q * d + m with q in 0..nmax (Q4_1, Q5_1).
void quantize_affine(const float* x, int nmax, uint16_t* d_out, uint16_t* m_out, uint8_t* q) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQK; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
  *d_out = fp32_to_fp16((hi - lo) / float(nmax));
  *m_out = fp32_to_fp16(lo);
  const float d = fp16_to_fp32(*d_out), m = fp16_to_fp32(*m_out);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQK; ++i) q[i] = uint8_t(round_clamp((x[i] - m) * id, 0, nmax));
}

void quantize_q4_0(const float* x, block_q4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    uint8_t q[kQK];
    b[i].d = quantize_symmetric(x, 8, q);
    for (int j = 0; j < 16; ++j) b[i].qs[j] = uint8_t(q[j] | q[j + 16] << 4);
  }
}

void quantize_q4_1(const float* x, block_q4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    uint8_t q[kQK];
    quantize_affine(x, 15, &b[i].d, &b[i].m, q);
    for (int j = 0; j < 16; ++j) b[i].qs[j] = uint8_t(q[j] | q[j + 16] << 4);
  }
}

void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = uint8_t((q[j] & 15) | (q[j + 16] & 15) << 4);
    qh |= uint32_t(q[j] >> 4) << j;
    qh |= uint32_t(q[j + 16] >> 4) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quantize_q5_0(const float* x, block_q5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    uint8_t q[kQK];
    b[i].d = quantize_symmetric(x, 16, q);
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

void quantize_q5_1(const float* x, block_q5_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    uint8_t q[kQK];
    quantize_affine(x, 31, &b[i].d, &b[i].m, q);
    pack_q5(q, b[i].qs, b[i].qh);
  }
}

// x = q * d with q in -127..127; returns sum(q).
int quantize_int8(const float* x, int n, float d, int8_t* q) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int sum = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = int8_t(round_clamp(x[i] * id, -127, 127));
    sum += q[i];
  }
  return sum;
}

float absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

void quantize_q8_0(const float* x, block_q8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(absmax(x, kQK) / 127.0f);
    quantize_int8(x, kQK, fp16_to_fp32(b[i].d), b[i].qs);
  }
}

void quantize_q8_1(const float* x, block_q8_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(absmax(x, kQK) / 127.0f);
    const float d = fp16_to_fp32(b[i].d);
    const int sum = quantize_int8(x, kQK, d, b[i].qs);
    b[i].s = fp32_to_fp16(d * float(sum));
  }
}

void quantize_q8_k(const float* x, block_q8_k* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    b[i].d = absmax(x, kQK_K) / 127.0f;
    quantize_int8(x, kQK_K, b[i].d, b[i].qs);
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      b[i].bsums[j] = int16_t(sum);
    }
  }
}

}  // namespace

void quantize_row(Type type, const float* src, void* dst, int64_t n) {
  const int64_t bs = traits(type).block_size;
  EMBER_CHECK(n % bs == 0);
  const int64_t nb = n / bs;
  switch (type) {
    case Type::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case Type::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case Type::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case Type::Q4_0: return quantize_q4_0(src, static_cast<block_q4_0*>(dst), nb);
    case Type::Q4_1: return quantize_q4_1(src, static_cast<block_q4_1*>(dst), nb);
    case Type::Q5_0: return quantize_q5_0(src, static_cast<block_q5_0*>(dst), nb);
    case Type::Q5_1: return quantize_q5_1(src, static_cast<block_q5_1*>(dst), nb);
    case Type::Q8_0: return quantize_q8_0(src, static_cast<block_q8_0*>(dst), nb);
    case Type::Q8_1: return quantize_q8_1(src, static_cast<block_q8_1*>(dst), nb);
    case Type::Q8_K: return quantize_q8_k(src, static_cast<block_q8_k*>(dst), nb);
    case Type::MXFP4: return quantize_row_mxfp4(src, dst, n);
    case Type::NVFP4: return quantize_row_nvfp4(src, dst, n, 1.0f);  // global scale 1
    case Type::Q2_K:
    case Type::Q3_K:
    case Type::Q4_K:
    case Type::Q5_K:
    case Type::Q6_K: return quantize_row_k(type, src, dst, nb);
    default: EMBER_CHECK(false && "quantize_row: unsupported type");
  }
}

}  // namespace ember::quant
