#include "quant/fp4_quantizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quant/dequantize.h"
#include "quant/fp4.h"
#include "quant/quantize.h"

namespace ember::quant {
namespace {

using Mat = std::vector<double>;  // row-major

// c [n][m] = a [n][k] · b [k][m] (ta: a is stored [k][n]).
Mat matmul(const Mat& a, const Mat& b, int64_t n, int64_t k, int64_t m, bool ta) {
  Mat c(size_t(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < k; ++l) {
      const double x = ta ? a[size_t(l * n + i)] : a[size_t(i * k + l)];
      if (x == 0.0) continue;
      const double* br = &b[size_t(l * m)];
      double* cr = &c[size_t(i * m)];
      for (int64_t j = 0; j < m; ++j) cr[j] += x * br[j];
    }
  return c;
}

// Orthonormalizes the columns of y [n][c] in place (modified Gram-Schmidt, twice).
void orthonormalize(Mat& y, int64_t n, int64_t c) {
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t j = 0; j < c; ++j) {
      for (int64_t p = 0; p < j; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += y[size_t(i * c + p)] * y[size_t(i * c + j)];
        for (int64_t i = 0; i < n; ++i) y[size_t(i * c + j)] -= dot * y[size_t(i * c + p)];
      }
      double norm = 0;
      for (int64_t i = 0; i < n; ++i) norm += y[size_t(i * c + j)] * y[size_t(i * c + j)];
      norm = std::sqrt(norm);
      for (int64_t i = 0; i < n; ++i) y[size_t(i * c + j)] = norm > 1e-300 ? y[size_t(i * c + j)] / norm : 0.0;
    }
}

// One-sided Jacobi on the columns of x [m][c]: afterwards x = U·Σ (orthogonal columns) and
// v [c][c] holds the rotations, so that x_in = x_out · vᵀ.
void jacobi_columns(Mat& x, int64_t m, int64_t c, Mat& v) {
  v.assign(size_t(c * c), 0.0);
  for (int64_t i = 0; i < c; ++i) v[size_t(i * c + i)] = 1.0;
  for (int sweep = 0; sweep < 60; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < c; ++p)
      for (int64_t q = p + 1; q < c; ++q) {
        double alpha = 0, beta = 0, gamma = 0;
        for (int64_t i = 0; i < m; ++i) {
          const double xp = x[size_t(i * c + p)], xq = x[size_t(i * c + q)];
          alpha += xp * xp;
          beta += xq * xq;
          gamma += xp * xq;
        }
        if (std::fabs(gamma) <= 1e-15 * std::sqrt(alpha * beta) || gamma == 0.0) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
        const double cs = 1 / std::sqrt(1 + t * t), sn = cs * t;
        auto rotate = [&](Mat& a, int64_t rows, int64_t cols) {
          for (int64_t i = 0; i < rows; ++i) {
            const double ap = a[size_t(i * cols + p)], aq = a[size_t(i * cols + q)];
            a[size_t(i * cols + p)] = cs * ap - sn * aq;
            a[size_t(i * cols + q)] = sn * ap + cs * aq;
          }
        };
        rotate(x, m, c);
        rotate(v, c, c);
      }
    if (!rotated) break;
  }
}

double column_norm(const Mat& x, int64_t m, int64_t c, int64_t j) {
  double s = 0;
  for (int64_t i = 0; i < m; ++i) s += x[size_t(i * c + j)] * x[size_t(i * c + j)];
  return std::sqrt(s);
}

// Quantizes rows of w [n][k] (NVFP4 with the matrix's global scale) and dequantizes back.
void quantize_rows(const float* w, Fp4Matrix& out, std::vector<float>& deq) {
  const int64_t row = *row_bytes(out.type, out.k);
  out.blocks.assign(size_t(row * out.n), 0);
  deq.resize(size_t(out.n * out.k));
  float amax = 0;
  for (int64_t i = 0; i < out.n * out.k; ++i) amax = std::max(amax, std::fabs(w[i]));
  out.global_scale = out.type == Type::NVFP4 ? nvfp4_global_scale(amax) : 1.0f;
  for (int64_t r = 0; r < out.n; ++r) {
    uint8_t* dst = &out.blocks[size_t(r * row)];
    float* back = &deq[size_t(r * out.k)];
    if (out.type == Type::NVFP4) {
      quantize_row_nvfp4(w + r * out.k, dst, out.k, out.global_scale);
      dequantize_row_nvfp4(dst, back, out.k, out.global_scale);
    } else {
      quantize_row(out.type, w + r * out.k, dst, out.k);
      dequantize_row(out.type, dst, back, out.k);
    }
  }
}

}  // namespace

Svd truncated_svd(const std::vector<double>& m, int64_t n, int64_t k, int64_t rank, int power_iterations,
                  uint32_t seed) {
  const int64_t l = std::min({rank + 8, n, k});  // oversampled width
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  Mat omega(size_t(k * l));
  for (double& x : omega) x = nd(rng);
  Mat q = matmul(m, omega, n, k, l, false);  // [n][l]
  orthonormalize(q, n, l);
  for (int it = 0; it < power_iterations; ++it) {
    Mat z = matmul(m, q, k, n, l, true);  // mᵀ·q [k][l]
    orthonormalize(z, k, l);
    q = matmul(m, z, n, k, l, false);
    orthonormalize(q, n, l);
  }
  Mat bt = matmul(m, q, k, n, l, true);  // (qᵀ·m)ᵀ = mᵀ·q [k][l]
  Mat v;
  jacobi_columns(bt, k, l, v);  // bt = Ũ·Σ·vᵀ, so qᵀ·m = v·Σ·Ũᵀ
  std::vector<int64_t> order(static_cast<size_t>(l));
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> sigma(static_cast<size_t>(l));
  for (int64_t j = 0; j < l; ++j) sigma[size_t(j)] = column_norm(bt, k, l, j);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sigma[size_t(a)] > sigma[size_t(b)]; });
  Mat qv = matmul(q, v, n, l, l, false);  // left singular vectors [n][l]
  Svd s;
  s.rank = std::min(rank, l);
  s.u.resize(size_t(n * s.rank));
  s.s.resize(size_t(s.rank));
  s.vt.resize(size_t(s.rank * k));
  for (int64_t r = 0; r < s.rank; ++r) {
    const int64_t j = order[size_t(r)];
    const double sg = sigma[size_t(j)];
    s.s[size_t(r)] = sg;
    for (int64_t i = 0; i < n; ++i) s.u[size_t(i * s.rank + r)] = qv[size_t(i * l + j)];
    for (int64_t i = 0; i < k; ++i) s.vt[size_t(r * k + i)] = sg > 0 ? bt[size_t(i * l + j)] / sg : 0.0;
  }
  return s;
}

std::vector<double> singular_values_jacobi(const std::vector<double>& m, int64_t n, int64_t k) {
  Mat x = m, v;
  jacobi_columns(x, n, k, v);
  std::vector<double> s(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) s[size_t(j)] = column_norm(x, n, k, j);
  std::sort(s.begin(), s.end(), std::greater<>());
  s.resize(size_t(std::min(n, k)));
  return s;
}

double snr_db(const float* ref, const float* x, int64_t n) {
  double sig = 0, err = 0;
  for (int64_t i = 0; i < n; ++i) {
    sig += double(ref[i]) * ref[i];
    err += (double(ref[i]) - x[i]) * (double(ref[i]) - x[i]);
  }
  return err > 0 ? 10 * std::log10(sig / err) : INFINITY;
}

double weighted_snr_db(const float* ref, const float* x, int64_t n, int64_t k, const float* col_scale) {
  double sig = 0, err = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const double s2 = double(col_scale[j]) * col_scale[j], r = ref[i * k + j], d = r - x[i * k + j];
      sig += s2 * r * r;
      err += s2 * d * d;
    }
  return err > 0 ? 10 * std::log10(sig / err) : INFINITY;
}

Expected<Fp4Matrix> quantize_fp4(const float* w, int64_t n, int64_t k, Type type, int64_t rank,
                                 LowRankScheme scheme, const float* input_scale) {
  if (type != Type::NVFP4 && type != Type::MXFP4)
    return make_error(ErrorKind::invalid_argument, "quantize_fp4: type {} is not NVFP4 or MXFP4", type_name(type));
  if (n <= 0 || k <= 0 || k % traits(type).block_size != 0)
    return make_error(ErrorKind::invalid_argument, "quantize_fp4: a [{}][{}] matrix cannot be {} (rows must be a "
                      "multiple of {})", n, k, type_name(type), traits(type).block_size);
  if (rank < 0 || rank % 16 != 0 || rank > std::min(n, k))
    return make_error(ErrorKind::invalid_argument, "low-rank compensation rank {} must be a positive multiple of 16 "
                      "(the FP4 block size) and at most min(N, K) = {}", rank, std::min(n, k));
  Fp4Matrix out;
  out.type = type;
  out.n = n;
  out.k = k;
  std::vector<float> q;
  quantize_rows(w, out, q);
  for (int64_t j = 0; input_scale && j < k; ++j)
    if (!(input_scale[j] > 0.0f) || !std::isfinite(input_scale[j]))
      return make_error(ErrorKind::invalid_argument, "quantize_fp4: input_scale[{}] = {} is not a positive finite "
                        "number", j, input_scale[j]);
  out.snr_db_quantized = out.snr_db_compensated = snr_db(w, q.data(), n * k);
  if (input_scale)
    out.weighted_snr_db_quantized = out.weighted_snr_db_compensated = weighted_snr_db(w, q.data(), n, k, input_scale);
  if (rank == 0) return out;
  Mat target(size_t(n * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t at = i * k + j;
      const double v = scheme == LowRankScheme::error_svd ? double(w[at]) - q[size_t(at)] : double(w[at]);
      target[size_t(at)] = input_scale ? v * input_scale[j] : v;
    }
  const Svd s = truncated_svd(target, n, k, rank);
  out.rank = s.rank;
  out.b.resize(size_t(n * s.rank));
  out.a.resize(size_t(s.rank * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < s.rank; ++r) out.b[size_t(i * s.rank + r)] = float(s.u[size_t(i * s.rank + r)] * s.s[size_t(r)]);
  for (int64_t r = 0; r < s.rank; ++r)  // undo the column scaling: (target·diag(s))_r · diag(1/s)
    for (int64_t j = 0; j < k; ++j)
      out.a[size_t(r * k + j)] = float(s.vt[size_t(r * k + j)] / (input_scale ? double(input_scale[j]) : 1.0));
  if (scheme == LowRankScheme::svdquant) {  // quantize what the low-rank term leaves
    std::vector<float> residual(size_t(n * k));
    const std::vector<float> low = [&] {
      Fp4Matrix only_low = out;
      only_low.blocks.assign(out.blocks.size(), 0);  // Q = 0 (all-zero codes, scale 0)
      return dequantize_fp4(only_low);
    }();
    for (int64_t i = 0; i < n * k; ++i) residual[size_t(i)] = w[i] - low[size_t(i)];
    quantize_rows(residual.data(), out, q);
  }
  const std::vector<float> approx = dequantize_fp4(out);
  out.snr_db_compensated = snr_db(w, approx.data(), n * k);
  if (input_scale) out.weighted_snr_db_compensated = weighted_snr_db(w, approx.data(), n, k, input_scale);
  return out;
}

std::vector<float> dequantize_fp4(const Fp4Matrix& m) {
  std::vector<float> out(size_t(m.n * m.k));
  const int64_t row = *row_bytes(m.type, m.k);
  for (int64_t r = 0; r < m.n; ++r) {
    if (m.type == Type::NVFP4)
      dequantize_row_nvfp4(&m.blocks[size_t(r * row)], &out[size_t(r * m.k)], m.k, m.global_scale);
    else
      dequantize_row(m.type, &m.blocks[size_t(r * row)], &out[size_t(r * m.k)], m.k);
  }
  for (int64_t i = 0; i < m.n; ++i)
    for (int64_t r = 0; r < m.rank; ++r) {
      const float b = m.b[size_t(i * m.rank + r)];
      for (int64_t j = 0; j < m.k; ++j) out[size_t(i * m.k + j)] += b * m.a[size_t(r * m.k + j)];
    }
  return out;
}

}  // namespace ember::quant
