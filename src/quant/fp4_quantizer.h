// The FP4 quantizer core (the `ember quantize` command builds on it): a float matrix
// W [N][K] to NVFP4 (per-16 E4M3 scales, global = amax / (6·448)) or MXFP4 (E8M0 per 32),
// optionally with a rank-r low-rank compensation W ≈ Q + B·A, B = U·Σ [N][r], A = Vᵀ [r][K]:
//   error_svd: Q = Q(W), B·A = SVD_r(W − Q)       (LQER / LoRC style)
//   svdquant:  B·A = SVD_r(W), Q = Q(W − B·A)     (SVDQuant style)
// The truncated SVD is a randomized range finder with power iterations and a one-sided
// Jacobi SVD of the small projection, in double precision. See docs/quant.md.
#pragma once
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "quant/types.h"

namespace ember::quant {

enum class LowRankScheme { error_svd, svdquant };

struct Fp4Matrix {
  Type type = Type::NVFP4;     // NVFP4 or MXFP4
  int64_t n = 0, k = 0;
  std::vector<uint8_t> blocks;  // n rows of row_bytes(type, k)
  float global_scale = 1.0f;   // NVFP4: multiplier on the blocks' values; MXFP4: 1
  int64_t rank = 0;
  std::vector<float> a;  // [rank][k]
  std::vector<float> b;  // [n][rank]
  double snr_db_quantized = 0.0;    // W vs Q(W)
  double snr_db_compensated = 0.0;  // W vs the result (with the low-rank term); = the above at rank 0
  // With input_scale: the same SNRs with every column weighted by s² (the output-error proxy).
  double weighted_snr_db_quantized = 0.0, weighted_snr_db_compensated = 0.0;
};

// rank 0: no compensation; otherwise a positive multiple of 16 (invalid_argument else).
// `input_scale` (optional, [k], > 0): the RMS of each input channel over calibration
// activations. The low-rank term then minimises the output error ‖(W − Q − B·A)·diag(s)‖
// instead of the weight error: the SVD is taken of the target times diag(s) and A is
// divided by s afterwards (LQER's activation-induced scaling; no pre_quant_scale stored).
Expected<Fp4Matrix> quantize_fp4(const float* w, int64_t n, int64_t k, Type type, int64_t rank = 0,
                                 LowRankScheme scheme = LowRankScheme::error_svd, const float* input_scale = nullptr);

// The dequantized Q plus B·A, [n][k].
std::vector<float> dequantize_fp4(const Fp4Matrix& m);

struct Svd {
  int64_t rank = 0;
  std::vector<double> u;   // [n][rank]
  std::vector<double> s;   // [rank], descending
  std::vector<double> vt;  // [rank][k]
};
// Top-`rank` SVD of m [n][k] (randomized; rank <= min(n, k)).
Svd truncated_svd(const std::vector<double>& m, int64_t n, int64_t k, int64_t rank, int power_iterations = 4,
                  uint32_t seed = 1);
// All singular values of m [n][k], descending, by one-sided Jacobi (slow; the reference).
std::vector<double> singular_values_jacobi(const std::vector<double>& m, int64_t n, int64_t k);

// 10 · log10(Σ ref² / Σ (ref − x)²).
double snr_db(const float* ref, const float* x, int64_t n);
// The same over rows of k columns with column j weighted by col_scale[j]².
double weighted_snr_db(const float* ref, const float* x, int64_t n, int64_t k, const float* col_scale);

}  // namespace ember::quant
