#include "quant/dequantize.h"

#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/fp4.h"

namespace ember::quant {

namespace {

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void dequant_q4_0(const block_q4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float((b[i].qs[j] & 15) - 8) * d;
      y[j + 16] = float((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const block_q4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float(b[i].qs[j] & 15) * d + m;
      y[j + 16] = float(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const block_q5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b[i].qs[j] & 15) | int((qh >> j) & 1) << 4;
      const int hi = (b[i].qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      y[j] = float(lo - 16) * d;
      y[j + 16] = float(hi - 16) * d;
    }
  }
}

void dequant_q5_1(const block_q5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b[i].qs[j] & 15) | int((qh >> j) & 1) << 4;
      const int hi = (b[i].qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
      y[j] = float(lo) * d + m;
      y[j + 16] = float(hi) * d + m;
    }
  }
}

void dequant_q8_0(const block_q8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = float(b[i].qs[j]) * d;
  }
}

void dequant_q8_1(const block_q8_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = float(b[i].qs[j]) * d;
  }
}

void dequant_q2_k(const block_q2_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 128, j = (e % 128) / 32, l = e % 32;
      const uint8_t sc = b[i].scales[8 * c + 2 * j + l / 16];
      const int q = (b[i].qs[32 * c + l] >> (2 * j)) & 3;
      y[e] = d * float(sc & 15) * float(q) - dmin * float(sc >> 4);
    }
  }
}

void dequant_q3_k(const block_q3_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    int8_t scales[16];
    unpack_scales_q3_k(b[i].scales, scales);
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low = (b[i].qs[32 * c + l] >> (2 * j)) & 3;
      const int high = (b[i].hmask[l] >> (4 * c + j)) & 1;
      const int q = low - (high ? 0 : 4);
      y[e] = d * float(scales[8 * c + 2 * j + l / 16]) * float(q);
    }
  }
}

void dequant_q4_k(const block_q4_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      unpack_scale_min_k4(b[i].scales, 2 * c, &sc0, &m0);
      unpack_scale_min_k4(b[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        y[64 * c + l] = d * float(sc0) * float(q[l] & 15) - dmin * float(m0);
        y[64 * c + 32 + l] = d * float(sc1) * float(q[l] >> 4) - dmin * float(m1);
      }
    }
  }
}

void dequant_q5_k(const block_q5_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      unpack_scale_min_k4(b[i].scales, 2 * c, &sc0, &m0);
      unpack_scale_min_k4(b[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        const int lo = (q[l] & 15) | ((b[i].qh[l] >> (2 * c)) & 1) << 4;
        const int hi = (q[l] >> 4) | ((b[i].qh[l] >> (2 * c + 1)) & 1) << 4;
        y[64 * c + l] = d * float(sc0) * float(lo) - dmin * float(m0);
        y[64 * c + 32 + l] = d * float(sc1) * float(hi) - dmin * float(m1);
      }
    }
  }
}

void dequant_q6_k(const block_q6_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const float d = fp16_to_fp32(b[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      float* out = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q0 = (ql[l] & 15) | ((qh[l] >> 0) & 3) << 4;
        const int q1 = (ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4;
        const int q2 = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
        const int q3 = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
        const int8_t* sc = b[i].scales + 8 * h;
        out[l] = d * float(sc[l / 16]) * float(q0 - 32);
        out[l + 32] = d * float(sc[2 + l / 16]) * float(q1 - 32);
        out[l + 64] = d * float(sc[4 + l / 16]) * float(q2 - 32);
        out[l + 96] = d * float(sc[6 + l / 16]) * float(q3 - 32);
      }
    }
  }
}

void dequant_q8_k(const block_q8_k* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K)
    for (int j = 0; j < kQK_K; ++j) y[j] = float(b[i].qs[j]) * b[i].d;
}

}  // namespace

void dequantize_row(Type type, const void* src, float* dst, int64_t n) {
  const int64_t bs = traits(type).block_size;
  EMBER_CHECK(n % bs == 0);
  const int64_t nb = n / bs;
  switch (type) {
    case Type::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case Type::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case Type::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case Type::Q4_0: return dequant_q4_0(static_cast<const block_q4_0*>(src), dst, nb);
    case Type::Q4_1: return dequant_q4_1(static_cast<const block_q4_1*>(src), dst, nb);
    case Type::Q5_0: return dequant_q5_0(static_cast<const block_q5_0*>(src), dst, nb);
    case Type::Q5_1: return dequant_q5_1(static_cast<const block_q5_1*>(src), dst, nb);
    case Type::Q8_0: return dequant_q8_0(static_cast<const block_q8_0*>(src), dst, nb);
    case Type::Q8_1: return dequant_q8_1(static_cast<const block_q8_1*>(src), dst, nb);
    case Type::Q2_K: return dequant_q2_k(static_cast<const block_q2_k*>(src), dst, nb);
    case Type::Q3_K: return dequant_q3_k(static_cast<const block_q3_k*>(src), dst, nb);
    case Type::Q4_K: return dequant_q4_k(static_cast<const block_q4_k*>(src), dst, nb);
    case Type::Q5_K: return dequant_q5_k(static_cast<const block_q5_k*>(src), dst, nb);
    case Type::Q6_K: return dequant_q6_k(static_cast<const block_q6_k*>(src), dst, nb);
    case Type::Q8_K: return dequant_q8_k(static_cast<const block_q8_k*>(src), dst, nb);
    case Type::MXFP4: return dequantize_row_mxfp4(src, dst, n);
    case Type::NVFP4: return dequantize_row_nvfp4(src, dst, n, 1.0f);  // without the global scale
    default: EMBER_CHECK(false && "dequantize_row: unsupported type");
  }
}

}  // namespace ember::quant
