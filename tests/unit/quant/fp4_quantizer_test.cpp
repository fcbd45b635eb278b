// The FP4 quantizer core: the randomized truncated SVD against a one-sided Jacobi
// reference, low-rank compensation (both schemes) raising SNR with rank, bad ranks refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/fp4_quantizer.h"
#include "quant_test_util.h"

namespace ember::quant {
namespace {

// A [n][k] matrix of rank-`r` signal (singular values 10, 9, ...) plus small noise.
std::vector<double> low_rank_plus_noise(std::mt19937& rng, int64_t n, int64_t k, int64_t r, double noise) {
  std::normal_distribution<double> nd;
  std::vector<double> u(size_t(n * r)), v(size_t(r * k)), m(size_t(n * k));
  for (auto& x : u) x = nd(rng) / std::sqrt(double(n));
  for (auto& x : v) x = nd(rng) / std::sqrt(double(k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double s = noise * nd(rng);
      for (int64_t l = 0; l < r; ++l) s += (10.0 - double(l)) * u[size_t(i * r + l)] * v[size_t(l * k + j)];
      m[size_t(i * k + j)] = s;
    }
  return m;
}

TEST(Fp4Quantizer, TruncatedSvdMatchesJacobi) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  const int64_t n = 48, k = 40, r = 6;
  const auto m = low_rank_plus_noise(rng, n, k, r, 0.01);
  const auto exact = singular_values_jacobi(m, n, k);
  const Svd s = truncated_svd(m, n, k, r);
  ASSERT_EQ(s.rank, r);
  for (int64_t i = 0; i < r; ++i) EXPECT_NEAR(s.s[size_t(i)], exact[size_t(i)], 1e-6 * exact[0]) << i;
  // U·Σ·Vᵀ reconstructs the matrix up to the noise.
  double err = 0, sig = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double x = 0;
      for (int64_t l = 0; l < r; ++l) x += s.u[size_t(i * r + l)] * s.s[size_t(l)] * s.vt[size_t(l * k + j)];
      err += (x - m[size_t(i * k + j)]) * (x - m[size_t(i * k + j)]);
      sig += m[size_t(i * k + j)] * m[size_t(i * k + j)];
    }
  // Eckart–Young: no rank-r matrix does better than the tail of the exact spectrum.
  double tail = 0;
  for (size_t i = size_t(r); i < exact.size(); ++i) tail += exact[i] * exact[i];
  EXPECT_LE(std::sqrt(err), 1.001 * std::sqrt(tail));
  EXPECT_LT(std::sqrt(err / sig), 0.05);
}

TEST(Fp4Quantizer, CompensationRaisesSnrWithRank) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  const int64_t n = 96, k = 128;
  // Outlier-heavy weights: a strong low-rank part on top of noise.
  const auto md = low_rank_plus_noise(rng, n, k, 8, 0.05);
  std::vector<float> w(md.begin(), md.end());
  for (Type type : {Type::NVFP4, Type::MXFP4})
    for (LowRankScheme scheme : {LowRankScheme::error_svd, LowRankScheme::svdquant}) {
      SCOPED_TRACE(std::string(type_name(type)) + (scheme == LowRankScheme::svdquant ? " svdquant" : " error-svd"));
      double last = -1e9;
      for (int64_t rank : {0, 16, 32, 64}) {
        auto q = quantize_fp4(w.data(), n, k, type, rank, scheme);
        ASSERT_TRUE(q.ok()) << q.status().message();
        const auto back = dequantize_fp4(*q);
        EXPECT_NEAR(snr_db(w.data(), back.data(), n * k), q->snr_db_compensated, 1e-9);
        std::printf("  %s %s rank %2lld: SNR %.2f dB -> %.2f dB\n", type_name(type).data(),
                    scheme == LowRankScheme::svdquant ? "svdquant " : "error-svd", (long long)rank,
                    q->snr_db_quantized, q->snr_db_compensated);
        EXPECT_GT(q->snr_db_compensated, last) << rank;
        last = q->snr_db_compensated;
      }
    }
}

TEST(Fp4Quantizer, BadRankRejected) {
  std::vector<float> w(64 * 64, 0.5f);
  for (int64_t rank : {-16, 8, 17, 80}) {
    auto q = quantize_fp4(w.data(), 64, 64, Type::NVFP4, rank);
    ASSERT_FALSE(q.ok()) << rank;
    EXPECT_EQ(q.status().kind(), ErrorKind::invalid_argument);
    EXPECT_NE(q.status().message().find("multiple of 16"), std::string::npos);
  }
  EXPECT_FALSE(quantize_fp4(w.data(), 64, 64, Type::Q4_0).ok());
}

// Calibration-weighted compensation (input_scale), for both FP4 formats.
class Fp4InputScale : public ::testing::TestWithParam<Type> {};

TEST_P(Fp4InputScale, WeightedSvdLowersTheWeightedError) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  const int64_t n = 80, k = 128;
  const auto md = low_rank_plus_noise(rng, n, k, 4, 0.2);
  const std::vector<float> w(md.begin(), md.end());
  // A few input channels carry most of the activation energy (the outlier channels of LLMs).
  std::vector<float> s(size_t(k), 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, k - 1);
  for (int i = 0; i < 6; ++i) s[size_t(pick(rng))] = 30.0f;
  for (LowRankScheme scheme : {LowRankScheme::error_svd, LowRankScheme::svdquant}) {
    SCOPED_TRACE(scheme == LowRankScheme::svdquant ? "svdquant" : "error-svd");
    auto plain = quantize_fp4(w.data(), n, k, GetParam(), 32, scheme);
    auto scaled = quantize_fp4(w.data(), n, k, GetParam(), 32, scheme, s.data());
    ASSERT_TRUE(plain.ok() && scaled.ok());
    const auto back_plain = dequantize_fp4(*plain), back_scaled = dequantize_fp4(*scaled);
    const double weighted_plain = weighted_snr_db(w.data(), back_plain.data(), n, k, s.data());
    EXPECT_NEAR(weighted_snr_db(w.data(), back_scaled.data(), n, k, s.data()), scaled->weighted_snr_db_compensated, 1e-9);
    EXPECT_NEAR(snr_db(w.data(), back_scaled.data(), n * k), scaled->snr_db_compensated, 1e-9);
    std::printf("  %s weighted SNR: unweighted SVD %.2f dB, weighted SVD %.2f dB (quantized only %.2f dB)\n",
                type_name(GetParam()).data(), weighted_plain, scaled->weighted_snr_db_compensated,
                scaled->weighted_snr_db_quantized);
    EXPECT_GT(scaled->weighted_snr_db_compensated, weighted_plain + 0.5);
    EXPECT_GT(scaled->weighted_snr_db_compensated, scaled->weighted_snr_db_quantized);
  }
}

TEST_P(Fp4InputScale, UnitScaleChangesNothing) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  const int64_t n = 48, k = 64;
  const auto md = low_rank_plus_noise(rng, n, k, 4, 0.1);
  const std::vector<float> w(md.begin(), md.end()), ones(size_t(k), 1.0f);
  auto a = quantize_fp4(w.data(), n, k, GetParam(), 16);
  auto b = quantize_fp4(w.data(), n, k, GetParam(), 16, LowRankScheme::error_svd, ones.data());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->blocks, b->blocks);
  EXPECT_EQ(a->a, b->a);
  EXPECT_EQ(a->b, b->b);
  EXPECT_NEAR(b->weighted_snr_db_compensated, b->snr_db_compensated, 1e-9);
}

TEST_P(Fp4InputScale, BadScaleRejected) {
  std::vector<float> w(32 * 64, 0.25f);
  for (float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    std::vector<float> s(64, 1.0f);
    s[7] = bad;
    auto q = quantize_fp4(w.data(), 32, 64, GetParam(), 16, LowRankScheme::error_svd, s.data());
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.status().kind(), ErrorKind::invalid_argument);
    EXPECT_NE(q.status().message().find("input_scale[7]"), std::string::npos) << q.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, Fp4InputScale, ::testing::Values(Type::NVFP4, Type::MXFP4),
                         [](const auto& info) { return std::string(type_name(info.param)); });

}  // namespace
}  // namespace ember::quant
