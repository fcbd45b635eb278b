// quantize_row -> dequantize_row on fresh Gaussian data: normalised RMS error below
// a per-format bound. Measured over 40 seeds (N(0, 0.7^2) data, 64 x 256 values),
// min..max: Q8_0/Q8_1 0.0053..0.0054 (step amax/127 of 32 values), Q8_K 0.0068..0.0072
// (amax of 256), Q6_K 0.0171..0.0175, Q5_K 0.0354..0.0362, Q5_1 0.0372..0.0382,
// Q5_0 0.0420..0.0436, Q4_K 0.0704..0.0723, Q4_1 0.0773..0.0793, Q4_0 0.0848..0.0876,
// Q3_K 0.142..0.145, Q2_K 0.267..0.272. For Gaussian data these sit where a uniform
// quantizer of that many levels over the block's range lands (e.g. Q4_1: range of 32
// samples ~4.1 sigma / 15 steps / sqrt(12) = 0.079). Bounds are ~1.15x the measured
// maximum: seed-to-seed spread is ~3%, so they only trip on a real regression (a lost
// bit or a broken scale search costs far more than 15%).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "quant/dequantize.h"
#include "quant/quantize.h"
#include "quant_test_util.h"

namespace ember::quant {
namespace {

using testing::fresh_seed;

struct Bound {
  Type type;
  double max_error;
};

constexpr Bound kBounds[] = {
    {Type::F32, 0.0},     {Type::F16, 0.00025}, {Type::BF16, 0.002}, {Type::Q8_0, 0.0063},
    {Type::Q8_1, 0.0063}, {Type::Q8_K, 0.0083}, {Type::Q6_K, 0.02},  {Type::Q5_K, 0.042},
    {Type::Q5_1, 0.044},  {Type::Q5_0, 0.05},   {Type::Q4_K, 0.083}, {Type::Q4_1, 0.091},
    {Type::Q4_0, 0.1},    {Type::Q3_K, 0.167},  {Type::Q2_K, 0.313}, {Type::NVFP4, 0.105},
    {Type::MXFP4, 0.13},
};

TEST(RoundTrip, ErrorWithinBound) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  const int64_t n = 64 * 256;
  for (const Bound& b : kBounds) {
    SCOPED_TRACE(testing::type_label(b.type));
    const auto x = testing::random_normal(rng, n, 0.7f);
    auto q = testing::row_buffer(b.type, n);
    quantize_row(b.type, x.data(), q.data(), n);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(b.type, q.data(), y.data(), n);
    const double err = testing::normalised_rms_error(x, y);
    std::printf("  %-5s normalised rms error %.5f (bound %.4f)\n", testing::type_label(b.type).c_str(),
                err, b.max_error);
    EXPECT_LE(err, b.max_error);
  }
}

// Blocks with a constant, all-zero, all-positive or one-spike content must not
// produce NaN/inf and must keep the spike's sign and rough size.
TEST(RoundTrip, DegenerateBlocks) {
  const int64_t n = 256;
  for (Type type : testing::weight_types()) {
    SCOPED_TRACE(testing::type_label(type));
    std::vector<std::vector<float>> cases = {std::vector<float>(n, 0.0f), std::vector<float>(n, 1.5f),
                                             std::vector<float>(n, -2.0f), std::vector<float>(n, 0.0f)};
    cases[3][37] = -5.0f;
    for (const auto& x : cases) {
      auto q = testing::row_buffer(type, n);
      quantize_row(type, x.data(), q.data(), n);
      std::vector<float> y(n);
      dequantize_row(type, q.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
      EXPECT_LE(testing::normalised_rms_error(x, y), 0.2);
    }
  }
}

}  // namespace
}  // namespace ember::quant
