// cpu::matmul vs a naive reference (dequantize, double-precision loop) on awkward
// shapes, output poisoned with NaN first; 1-thread and 3-thread pools must agree
// bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/matmul.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"
#include "quant/vec_dot.h"
#include "quant_test_util.h"

namespace ember::cpu {
namespace {

using quant::Type;

struct Problem {
  Type type;
  int64_t m, n, k;
  std::vector<uint8_t> w;
  std::vector<float> x;
};

Problem make_problem(std::mt19937& rng, Type type, int64_t m, int64_t n, int64_t k) {
  Problem p{type, m, n, k, {}, {}};
  const int64_t row = *quant::row_bytes(type, k);
  p.w.resize(size_t(row * n));
  for (int64_t r = 0; r < n; ++r) {
    const auto wf = quant::testing::random_normal(rng, k);
    quant::quantize_row(type, wf.data(), p.w.data() + r * row, k);
  }
  p.x = quant::testing::random_normal(rng, m * k);
  return p;
}

std::vector<float> run_matmul(const Problem& p, ThreadPool& pool, bool fast = true) {
  std::vector<float> y(size_t(p.m * p.n), std::numeric_limits<float>::quiet_NaN());
  MatmulParams params;
  params.w_type = p.type;
  params.w = p.w.data();
  params.n_out = p.n;
  params.n_in = p.k;
  params.w_row_bytes = *quant::row_bytes(p.type, p.k);
  params.x = p.x.data();
  params.n_tokens = p.m;
  params.y = y.data();
  params.fast_activations = fast;
  matmul(params, pool);
  return y;
}

// fast: the activation goes through the same quantization as in matmul, so the only
// difference left is float summation order. Otherwise (the precise default) the
// reference uses the fp32 activations themselves.
void check_against_reference(const Problem& p, const std::vector<float>& y, bool fast = true) {
  const Type a_type = quant::vec_dot_type(p.type);
  const int64_t row = *quant::row_bytes(p.type, p.k);
  std::vector<float> w(static_cast<size_t>(p.k)), x(static_cast<size_t>(p.k));
  auto a = quant::testing::row_buffer(a_type, p.k);
  const double tol = !fast ? 2e-4 : (p.type == Type::Q4_1 || p.type == Type::Q5_1) ? 2e-3 : 2e-5;
  for (int64_t m = 0; m < p.m; ++m) {
    if (fast && a_type != Type::F32) {
      quant::quantize_activation(a_type, p.x.data() + m * p.k, a.data(), p.k);
      quant::dequantize_row(a_type, a.data(), x.data(), p.k);
    } else {
      std::copy_n(p.x.data() + m * p.k, p.k, x.data());
    }
    for (int64_t n = 0; n < p.n; ++n) {
      quant::dequantize_row(p.type, p.w.data() + n * row, w.data(), p.k);
      double sum = 0, mag = 0;
      for (int64_t i = 0; i < p.k; ++i) {
        sum += double(w[i]) * x[i];
        mag += std::fabs(double(w[i]) * x[i]);
      }
      const float got = y[size_t(m * p.n + n)];
      ASSERT_TRUE(std::isfinite(got)) << "m=" << m << " n=" << n;
      ASSERT_NEAR(got, sum, tol * mag + 1e-30) << "m=" << m << " n=" << n;
    }
  }
}

TEST(Matmul, MatchesReferenceOnAwkwardShapes) {
  const uint32_t seed = quant::testing::fresh_seed();
  SCOPED_TRACE(quant::testing::seed_note(seed));
  std::mt19937 rng(seed);
  ThreadPool pool1(1), pool3(3);
  for (Type type : quant::testing::weight_types()) {
    const int64_t block = std::max<int64_t>(quant::traits(type).block_size, 1);
    for (int64_t blocks : {1, 3}) {
      const int64_t k = block == 1 ? 37 * blocks : blocks * block;
      for (int64_t m : {1, 3, 17}) {
        for (int64_t n : {1, 5, 67}) {
          SCOPED_TRACE(quant::testing::type_label(type) + " M=" + std::to_string(m) +
                       " N=" + std::to_string(n) + " K=" + std::to_string(k));
          const Problem p = make_problem(rng, type, m, n, k);
          const auto y1 = run_matmul(p, pool1);
          const auto y3 = run_matmul(p, pool3);
          ASSERT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)), 0);
          check_against_reference(p, y1);
          check_against_reference(p, run_matmul(p, pool3, false), false);
        }
      }
    }
  }
}

// Large enough to cross the row-block and token-tile boundaries, the parallel
// activation quantization and the threshold above which rows are split across
// threads (small problems run on the calling thread alone).
TEST(Matmul, TiledPrefillMatchesSingleToken) {
  const uint32_t seed = quant::testing::fresh_seed();
  SCOPED_TRACE(quant::testing::seed_note(seed));
  std::mt19937 rng(seed);
  ThreadPool pool(3), pool1(1);
  for (Type type : quant::testing::weight_types()) {
    SCOPED_TRACE(quant::testing::type_label(type));
    Problem p = make_problem(rng, type, 131, 45, 512);
    const auto y = run_matmul(p, pool);
    const auto y_serial = run_matmul(p, pool1);
    ASSERT_EQ(std::memcmp(y.data(), y_serial.data(), y.size() * sizeof(float)), 0);
    check_against_reference(p, y);
    const auto y_precise = run_matmul(p, pool, false);
    check_against_reference(p, y_precise, false);
    for (int64_t m : {int64_t(0), int64_t(64), int64_t(130)}) {
      Problem single{type, 1, p.n, p.k, p.w, {}};
      single.x.assign(p.x.begin() + m * p.k, p.x.begin() + (m + 1) * p.k);
      const auto y1 = run_matmul(single, pool);
      ASSERT_EQ(std::memcmp(y1.data(), y.data() + m * p.n, size_t(p.n) * sizeof(float)), 0) << m;
      const auto precise1 = run_matmul(single, pool, false);
      ASSERT_EQ(std::memcmp(precise1.data(), y_precise.data() + m * p.n, size_t(p.n) * sizeof(float)), 0) << m;
    }
  }
}

}  // namespace
}  // namespace ember::cpu
