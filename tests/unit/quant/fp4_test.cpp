// MXFP4 and NVFP4: the scalar codecs (E2M1, FP8 E4M3, E8M0) on known values, hand-built
// blocks decoded exactly (element pairing included), and the global-scale quantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/fp4.h"
#include "quant/quantize.h"
#include "quant/vec_dot.h"
#include "quant_test_util.h"

namespace ember::quant {
namespace {

TEST(Fp4, TraitsAndIds) {
  EXPECT_EQ(traits(Type::NVFP4).block_size, 16);
  EXPECT_EQ(traits(Type::NVFP4).block_bytes, 9);
  EXPECT_EQ(traits(Type::MXFP4).block_size, 32);
  EXPECT_EQ(traits(Type::MXFP4).block_bytes, 17);
  EXPECT_TRUE(type_traits(39).has_value());
  EXPECT_FALSE(type_traits(uint32_t(Type::NVFP4)).has_value());  // never a GGUF id
  EXPECT_EQ(vec_dot_type(Type::MXFP4), Type::Q8_0);
  EXPECT_EQ(vec_dot_type(Type::NVFP4), Type::F32);
}

TEST(Fp4, E2M1Codes) {
  const float values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(kE2M1Values[c], values[c]);
    EXPECT_EQ(kE2M1Values[c + 8], -values[c]);  // sign is bit 3
    EXPECT_EQ(e2m1_encode(values[c]), c);
    if (c) EXPECT_EQ(e2m1_encode(-values[c]), c + 8);
  }
  // Ties go to the even code; beyond 6 saturates.
  EXPECT_EQ(e2m1_encode(0.25f), 0);
  EXPECT_EQ(e2m1_encode(0.75f), 2);
  EXPECT_EQ(e2m1_encode(1.25f), 2);
  EXPECT_EQ(e2m1_encode(1.75f), 4);
  EXPECT_EQ(e2m1_encode(2.5f), 4);
  EXPECT_EQ(e2m1_encode(3.5f), 6);
  EXPECT_EQ(e2m1_encode(5.0f), 6);
  EXPECT_EQ(e2m1_encode(5.1f), 7);
  EXPECT_EQ(e2m1_encode(1e9f), 7);
  EXPECT_EQ(e2m1_encode(-0.1f), 0);
}

TEST(Fp4, E4M3KnownValuesAndRoundTrip) {
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xfe), -448.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_float(0x3c), 1.5f);
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7f)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xff)));
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f || b == 0x80) continue;
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(uint8_t(b))), b) << b;
  }
  EXPECT_EQ(float_to_e4m3(1000.0f), 0x7e);  // saturates
  EXPECT_EQ(float_to_e4m3(1.0625f), 0x38);  // tie between 1 and 1.125 -> even mantissa
  EXPECT_EQ(float_to_e4m3(1.1875f), 0x3a);  // tie between 1.125 and 1.25 -> 1.25
}

TEST(Fp4, E8M0) {
  EXPECT_EQ(e8m0_to_float(127), 1.0f);
  EXPECT_EQ(e8m0_to_float(130), 8.0f);
  EXPECT_EQ(e8m0_to_float(120), 1.0f / 128);
  EXPECT_TRUE(std::isnan(e8m0_to_float(255)));
}

TEST(Fp4, MxFp4BlockPairsJWithJPlus16) {
  block_mxfp4 b{};
  b.e = 128;  // scale 2
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t((j & 15) | ((15 - j) << 4));
  float y[32];
  dequantize_row(Type::MXFP4, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * kE2M1Values[j]) << j;
    EXPECT_EQ(y[j + 16], 2.0f * kE2M1Values[15 - j]) << j;
  }
}

TEST(Fp4, NvFp4BlockPairsEvenOdd) {
  block_nvfp4 b{};
  b.d = 0x3c;  // 1.5
  for (int j = 0; j < 8; ++j) b.qs[j] = uint8_t(j | ((j + 8) << 4));
  float y[16];
  dequantize_row(Type::NVFP4, &b, y, 16);
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(y[2 * j], 1.5f * kE2M1Values[j]) << j;
    EXPECT_EQ(y[2 * j + 1], 1.5f * kE2M1Values[j + 8]) << j;
  }
  dequantize_row_nvfp4(&b, y, 16, 0.25f);
  EXPECT_EQ(y[14], 1.5f * 6.0f * 0.25f);  // element 14: low nibble of qs[7], code 7
}

// Values that are exactly representable come back exactly.
TEST(Fp4, ExactValuesRoundTrip) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = kE2M1Values[i % 16] * 0.5f;
  std::vector<uint8_t> q(17);
  std::vector<float> y(32);
  quantize_row(Type::MXFP4, x.data(), q.data(), 32);
  dequantize_row(Type::MXFP4, q.data(), y.data(), 32);
  EXPECT_EQ(x, y);
  std::vector<uint8_t> nv(18);
  quantize_row(Type::NVFP4, x.data(), nv.data(), 32);
  dequantize_row(Type::NVFP4, nv.data(), y.data(), 32);
  EXPECT_EQ(x, y);
}

// With the global scale amax / (6·448), tiny and huge tensors keep their precision.
TEST(Fp4, NvFp4GlobalScaleKeepsPrecisionAtAnyMagnitude) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  for (float sigma : {1e-6f, 1.0f, 1e5f}) {
    const int64_t n = 4096;
    const auto x = testing::random_normal(rng, n, sigma);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    const float g = nvfp4_global_scale(amax);
    std::vector<uint8_t> q(size_t(*row_bytes(Type::NVFP4, n)));
    quantize_row_nvfp4(x.data(), q.data(), n, g);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row_nvfp4(q.data(), y.data(), n, g);
    EXPECT_LT(testing::normalised_rms_error(x, y), 0.12) << sigma;
  }
}

}  // namespace
}  // namespace ember::quant
