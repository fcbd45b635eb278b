// Reference codecs, row (de)quantizers and scalar dots of MXFP4 and NVFP4.
#include "quant/fp4.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"

namespace ember::quant {

namespace {

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const int exp = (b >> 3) & 15, mant = b & 7;
    float v = exp == 0 ? std::ldexp(float(mant), -9) : std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
    if ((b & 0x7f) == 0x7f) v = std::numeric_limits<float>::quiet_NaN();
    t[size_t(b)] = (b & 0x80) ? -v : v;
  }
  return t;
}

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> t = make_e4m3_table();
  return t;
}

// Sum of squared errors of a block quantized to E2M1 with scale s (s > 0).
double e2m1_block_error(const float* x, int n, float s) {
  double err = 0.0;
  for (int i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(kE2M1Values[e2m1_encode(x[i] / s)]) * s;
    err += d * d;
  }
  return err;
}

float block_absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

uint8_t e2m1_encode(float v) {
  const uint8_t sign = std::signbit(v) ? 8 : 0;
  const float a = std::fabs(v);
  uint8_t code;
  if (!(a > 0.25f)) code = 0;  // NaN -> 0 too
  else if (a < 0.75f) code = 1;
  else if (a <= 1.25f) code = 2;
  else if (a < 1.75f) code = 3;
  else if (a <= 2.5f) code = 4;
  else if (a < 3.5f) code = 5;
  else if (a <= 5.0f) code = 6;
  else code = 7;
  return code == 0 ? 0 : uint8_t(code | sign);
}

float e4m3_to_float(uint8_t b) { return e4m3_table()[b]; }

uint8_t float_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= 448.0f) return uint8_t(sign | 0x7e);
  // Positive codes 0..0x7e are increasing in value: find the neighbours of a.
  const auto& t = e4m3_table();
  int lo = 0, hi = 0x7e;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (t[size_t(mid)] <= a ? lo : hi) = mid;
  }
  const float dl = a - t[size_t(lo)], dh = t[size_t(hi)] - a;
  const int code = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
  return code == 0 ? 0 : uint8_t(code | sign);
}

float e8m0_to_float(uint8_t e) {
  if (e == 0xff) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, int(e) - 127);
}

float nvfp4_global_scale(float amax) { return amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f; }

void dequantize_row_nvfp4(const void* src, float* dst, int64_t n, float global) {
  EMBER_CHECK(n % kQK_NV == 0);
  const auto* b = static_cast<const block_nvfp4*>(src);
  for (int64_t i = 0; i < n / kQK_NV; ++i, dst += kQK_NV) {
    const float s = e4m3_to_float(b[i].d) * global;
    for (int j = 0; j < kQK_NV / 2; ++j) {
      dst[2 * j] = kE2M1Values[b[i].qs[j] & 15] * s;
      dst[2 * j + 1] = kE2M1Values[b[i].qs[j] >> 4] * s;
    }
  }
}

void quantize_row_nvfp4(const float* src, void* dst, int64_t n, float global) {
  EMBER_CHECK(n % kQK_NV == 0 && global > 0.0f);
  auto* b = static_cast<block_nvfp4*>(dst);
  for (int64_t i = 0; i < n / kQK_NV; ++i, src += kQK_NV) {
    b[i].d = float_to_e4m3(block_absmax(src, kQK_NV) / 6.0f / global);
    const float s = e4m3_to_float(b[i].d) * global;
    const float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int j = 0; j < kQK_NV / 2; ++j)
      b[i].qs[j] = uint8_t(e2m1_encode(src[2 * j] * inv) | e2m1_encode(src[2 * j + 1] * inv) << 4);
  }
}

void dequantize_row_mxfp4(const void* src, float* dst, int64_t n) {
  EMBER_CHECK(n % kQK == 0);
  const auto* b = static_cast<const block_mxfp4*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float s = e8m0_to_float(b[i].e);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = kE2M1Values[b[i].qs[j] & 15] * s;
      dst[j + kQK / 2] = kE2M1Values[b[i].qs[j] >> 4] * s;
    }
  }
}

void quantize_row_mxfp4(const float* src, void* dst, int64_t n) {
  EMBER_CHECK(n % kQK == 0);
  auto* b = static_cast<block_mxfp4*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float amax = block_absmax(src, kQK);
    int e = 0;  // biased exponent; 0 for an all-zero block
    if (amax > 0.0f && std::isfinite(amax)) {
      // 2^(e-127) >= amax / 6 avoids clipping; one smaller may fit the rest better.
      const int hi = std::clamp(int(std::ceil(std::log2(double(amax) / 6.0))) + 127, 1, 254);
      const double err_hi = e2m1_block_error(src, kQK, e8m0_to_float(uint8_t(hi)));
      const double err_lo = e2m1_block_error(src, kQK, e8m0_to_float(uint8_t(hi - 1)));
      e = err_lo < err_hi ? hi - 1 : hi;
    }
    b[i].e = uint8_t(e);
    const float inv = 1.0f / e8m0_to_float(b[i].e);
    for (int j = 0; j < kQK / 2; ++j)
      b[i].qs[j] = uint8_t(e2m1_encode(src[j] * inv) | e2m1_encode(src[j + kQK / 2] * inv) << 4);
  }
}

float vec_dot_mxfp4_q8_0(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_mxfp4*>(vw);
  const auto* a = static_cast<const block_q8_0*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      isum += kE2M1Doubled[w[i].qs[j] & 15] * a[i].qs[j];
      isum += kE2M1Doubled[w[i].qs[j] >> 4] * a[i].qs[j + kQK / 2];
    }
    sum += 0.5f * e8m0_to_float(w[i].e) * fp16_to_fp32(a[i].d) * float(isum);
  }
  return sum;
}

float vec_dot_nvfp4_f32(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_nvfp4*>(vw);
  const auto* a = static_cast<const float*>(va);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_NV; ++i, a += kQK_NV) {
    float block = 0.0f;
    for (int j = 0; j < kQK_NV / 2; ++j)
      block += kE2M1Values[w[i].qs[j] & 15] * a[2 * j] + kE2M1Values[w[i].qs[j] >> 4] * a[2 * j + 1];
    sum += e4m3_to_float(w[i].d) * block;
  }
  return sum;
}

}  // namespace ember::quant
