// K-quant quantizers: a per-sub-block scale (and min) search, then a second level that
// quantizes the sub-block scales against one fp16 super-block scale, then the final
// quants recomputed against the scales actually stored.
#include "quant/quantize_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"

namespace ember::quant {

namespace {

int round_clamp(float v, int lo, int hi) { return std::clamp(int(std::lrintf(v)), lo, hi); }

// Fits x ≈ scale * q - min with q in 0..nmax, scale >= 0, min >= 0 (the offset is
// never positive, as the formats store it). Tries candidate scales around
// (max - min) / nmax, refits (scale, offset) by least squares for each choice of q,
// keeps the one with the smallest squared error.
void fit_scale_min(const float* x, int n, int nmax, float* scale, float* min) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
  lo = std::min(lo, 0.0f);
  *scale = (hi - lo) / float(nmax);
  *min = -lo;
  if (hi <= lo) { *scale = 0.0f; return; }
  float best_err = INFINITY;
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (float(nmax) + 0.1f * float(step)) / (hi - lo);
    double sl = 0, sll = 0, sx = 0, slx = 0;
    int q[kQK_K];
    for (int i = 0; i < n; ++i) {
      q[i] = round_clamp((x[i] - lo) * iscale, 0, nmax);
      sl += q[i]; sll += double(q[i]) * q[i]; sx += x[i]; slx += double(q[i]) * x[i];
    }
    const double det = n * sll - sl * sl;
    if (det <= 0) continue;
    double a = (n * slx - sl * sx) / det;
    double b = (sll * sx - sl * slx) / det;
    if (b > 0) { b = 0; a = slx / sll; }
    if (a <= 0) continue;
    double err = 0;
    for (int i = 0; i < n; ++i) { const double e = a * q[i] + b - x[i]; err += e * e; }
    if (err < best_err) { best_err = float(err); *scale = float(a); *min = float(-b); }
  }
}

// Fits x ≈ scale * q with q in -nmax..nmax-1 (scale may be negative, so the extreme
// value can use the longer negative side). Candidates around -vmax / nmax, each
// refit by least squares.
float fit_symmetric(const float* x, int n, int nmax) {
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); vmax = x[i]; }
  if (amax == 0.0f) return 0.0f;
  float best_scale = vmax / float(-nmax);
  double best_score = -1;
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(float(nmax) + 0.1f * float(step)) / vmax;
    double sqx = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp(x[i] * iscale, -nmax, nmax - 1);
      sqx += double(q) * x[i];
      sqq += double(q) * q;
    }
    // error = sum x^2 - sqx^2 / sqq: maximise sqx^2 / sqq
    if (sqq > 0 && sqx * sqx / sqq > best_score) {
      best_score = sqx * sqx / sqq;
      best_scale = float(sqx / sqq);
    }
  }
  return best_scale;
}

// Second level for unsigned sub-block scales: levels[j] = round(v[j] / d) in 0..lmax.
uint16_t quantize_levels(const float* v, int n, int lmax, uint8_t* levels) {
  float vmax = 0.0f;
  for (int j = 0; j < n; ++j) vmax = std::max(vmax, v[j]);
  const uint16_t d16 = fp32_to_fp16(vmax / float(lmax));
  const float d = fp16_to_fp32(d16);
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) levels[j] = uint8_t(round_clamp(v[j] * id, 0, lmax));
  return d16;
}

// Second level for signed sub-block scales in -half..half-1.
uint16_t quantize_signed_levels(const float* v, int n, int half, int8_t* levels) {
  float amax = 0.0f, vmax = 0.0f;
  for (int j = 0; j < n; ++j)
    if (std::fabs(v[j]) > amax) { amax = std::fabs(v[j]); vmax = v[j]; }
  const uint16_t d16 = fp32_to_fp16(vmax / float(-half));
  const float d = fp16_to_fp32(d16);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) levels[j] = int8_t(round_clamp(v[j] * id, -half, half - 1));
  return d16;
}

// Quants of a sub-block against its stored scale and min (q in 0..nmax).
void requantize_affine(const float* x, int n, float scale, float min, int nmax, uint8_t* q) {
  const float id = scale > 0.0f ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = uint8_t(round_clamp((x[i] + min) * id, 0, nmax));
}

// Quants of a sub-block against its stored signed scale, offset by nmax (0..2*nmax-1).
void requantize_symmetric(const float* x, int n, float scale, int nmax, uint8_t* q) {
  const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = uint8_t(round_clamp(x[i] * id, -nmax, nmax - 1) + nmax);
}

// Shared by Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins. Fills d, dmin,
// the packed scales and the 256 quants (0..nmax).
void quantize_k4_common(const float* x, int nmax, uint16_t* d, uint16_t* dmin,
                        uint8_t* packed, uint8_t* q) {
  float scales[8], mins[8];
  for (int j = 0; j < 8; ++j) fit_scale_min(x + 32 * j, 32, nmax, &scales[j], &mins[j]);
  uint8_t ls[8], lm[8];
  *d = quantize_levels(scales, 8, 63, ls);
  *dmin = quantize_levels(mins, 8, 63, lm);
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      packed[j] |= ls[j];
      packed[j + 4] |= lm[j];
    } else {
      packed[j + 4] = uint8_t((ls[j] & 15) | (lm[j] & 15) << 4);
      packed[j - 4] |= uint8_t((ls[j] >> 4) << 6);
      packed[j] |= uint8_t((lm[j] >> 4) << 6);
    }
  }
  const float df = fp16_to_fp32(*d), dminf = fp16_to_fp32(*dmin);
  for (int j = 0; j < 8; ++j)
    requantize_affine(x + 32 * j, 32, df * ls[j], dminf * lm[j], nmax, q + 32 * j);
}

void quantize_q4_k(const float* x, block_q4_k* b) {
  uint8_t q[kQK_K];
  quantize_k4_common(x, 15, &b->d, &b->dmin, b->scales, q);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b->qs[32 * c + l] = uint8_t(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

void quantize_q5_k(const float* x, block_q5_k* b) {
  uint8_t q[kQK_K];
  quantize_k4_common(x, 31, &b->d, &b->dmin, b->scales, q);
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      b->qs[32 * c + l] = uint8_t((lo & 15) | (hi & 15) << 4);
      b->qh[l] |= uint8_t((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
    }
  }
}

void quantize_q2_k(const float* x, block_q2_k* b) {
  float scales[16], mins[16];
  for (int j = 0; j < 16; ++j) fit_scale_min(x + 16 * j, 16, 3, &scales[j], &mins[j]);
  uint8_t ls[16], lm[16];
  b->d = quantize_levels(scales, 16, 15, ls);
  b->dmin = quantize_levels(mins, 16, 15, lm);
  const float df = fp16_to_fp32(b->d), dminf = fp16_to_fp32(b->dmin);
  uint8_t q[kQK_K];
  for (int j = 0; j < 16; ++j) {
    b->scales[j] = uint8_t(ls[j] | lm[j] << 4);
    requantize_affine(x + 16 * j, 16, df * ls[j], dminf * lm[j], 3, q + 16 * j);
  }
  std::memset(b->qs, 0, sizeof(b->qs));
  for (int e = 0; e < kQK_K; ++e) {
    const int c = e / 128, j = (e % 128) / 32, l = e % 32;
    b->qs[32 * c + l] |= uint8_t(q[e] << (2 * j));
  }
}

void quantize_q3_k(const float* x, block_q3_k* b) {
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(x + 16 * j, 16, 4);
  int8_t ls[16];
  b->d = quantize_signed_levels(scales, 16, 32, ls);
  const float df = fp16_to_fp32(b->d);
  uint8_t q[kQK_K];  // 0..7 = quant + 4
  for (int j = 0; j < 16; ++j) requantize_symmetric(x + 16 * j, 16, df * ls[j], 4, q + 16 * j);
  std::memset(b->scales, 0, sizeof(b->scales));
  for (int i = 0; i < 16; ++i) {
    const int v = ls[i] + 32;
    b->scales[i % 8] |= uint8_t((v & 15) << (i < 8 ? 0 : 4));
    b->scales[8 + i % 4] |= uint8_t((v >> 4) << (2 * (i / 4)));
  }
  std::memset(b->qs, 0, sizeof(b->qs));
  std::memset(b->hmask, 0, sizeof(b->hmask));
  for (int e = 0; e < kQK_K; ++e) {
    const int c = e / 128, j = (e % 128) / 32, l = e % 32;
    b->qs[32 * c + l] |= uint8_t((q[e] & 3) << (2 * j));
    b->hmask[l] |= uint8_t((q[e] >> 2) << (4 * c + j));  // set: +0, clear: -4
  }
}

void quantize_q6_k(const float* x, block_q6_k* b) {
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(x + 16 * j, 16, 32);
  int8_t ls[16];
  b->d = quantize_signed_levels(scales, 16, 128, ls);
  const float df = fp16_to_fp32(b->d);
  uint8_t q[kQK_K];  // 0..63 = quant + 32
  for (int j = 0; j < 16; ++j) {
    b->scales[j] = ls[j];
    requantize_symmetric(x + 16 * j, 16, df * ls[j], 32, q + 16 * j);
  }
  for (int h = 0; h < 2; ++h) {
    const uint8_t* qq = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      b->ql[64 * h + l] = uint8_t((qq[l] & 15) | (qq[l + 64] & 15) << 4);
      b->ql[64 * h + l + 32] = uint8_t((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
      b->qh[32 * h + l] = uint8_t((qq[l] >> 4) | (qq[l + 32] >> 4) << 2 |
                                  (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
    }
  }
}

}  // namespace

void quantize_row_k(Type type, const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    switch (type) {
      case Type::Q2_K: quantize_q2_k(x, static_cast<block_q2_k*>(dst) + i); break;
      case Type::Q3_K: quantize_q3_k(x, static_cast<block_q3_k*>(dst) + i); break;
      case Type::Q4_K: quantize_q4_k(x, static_cast<block_q4_k*>(dst) + i); break;
      case Type::Q5_K: quantize_q5_k(x, static_cast<block_q5_k*>(dst) + i); break;
      case Type::Q6_K: quantize_q6_k(x, static_cast<block_q6_k*>(dst) + i); break;
      default: EMBER_CHECK(false && "quantize_row_k: not a K-quant");
    }
  }
}

}  // namespace ember::quant
