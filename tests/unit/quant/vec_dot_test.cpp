// vec_dot (AVX2 where compiled) vs vec_dot_scalar vs a float reference (dequantized
// weight · dequantized activation in double), on awkward lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/dequantize.h"
#include "quant/quantize.h"
#include "quant/vec_dot.h"
#include "quant_test_util.h"

namespace ember::quant {
namespace {

struct Reference {
  double value;
  double magnitude;  // sum |w_i * a_i|: the scale of rounding errors
};

Reference reference_dot(Type w_type, const void* w, Type a_type, const void* a, int64_t n) {
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  dequantize_row(w_type, w, wf.data(), n);
  dequantize_row(a_type, a, af.data(), n);
  Reference r{0, 0};
  for (int64_t i = 0; i < n; ++i) {
    r.value += double(wf[i]) * af[i];
    r.magnitude += std::fabs(double(wf[i]) * af[i]);
  }
  return r;
}

// Q4_1/Q5_1 dots use the activation block's fp16 s = d * sum(q) rather than the exact
// sum: a relative error up to 2^-11 of the offset term, which the float reference
// does not have.
double reference_tolerance(Type w_type) {
  return (w_type == Type::Q4_1 || w_type == Type::Q5_1) ? 2e-3 : 2e-5;
}

TEST(VecDot, MatchesScalarAndReference) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  for (Type w_type : testing::weight_types()) {
    const Type a_type = vec_dot_type(w_type);
    const int64_t block = std::max(traits(w_type).block_size, traits(a_type).block_size);
    for (int64_t blocks : {1, 3, 7}) {
      const int64_t n = blocks * (block == 1 ? 37 : block);  // float weights: odd lengths
      SCOPED_TRACE(testing::type_label(w_type) + " n=" + std::to_string(n));
      const auto wf = testing::random_normal(rng, n);
      const auto af = testing::random_normal(rng, n, 2.0f);
      auto w = testing::row_buffer(w_type, n);
      auto a = testing::row_buffer(a_type, n);
      quantize_row(w_type, wf.data(), w.data(), n);
      quantize_activation(a_type, af.data(), a.data(), n);
      const Reference ref = reference_dot(w_type, w.data(), a_type, a.data(), n);
      const double fast = vec_dot(w_type, w.data(), a.data(), n);
      const double scalar = vec_dot_scalar(w_type, w.data(), a.data(), n);
      EXPECT_NEAR(fast, scalar, 2e-5 * ref.magnitude);
      EXPECT_NEAR(scalar, ref.value, reference_tolerance(w_type) * ref.magnitude);
      EXPECT_NEAR(fast, ref.value, reference_tolerance(w_type) * ref.magnitude);
    }
  }
}

TEST(VecDot, ActivationTypes) {
  EXPECT_EQ(vec_dot_type(Type::Q4_0), Type::Q8_0);
  EXPECT_EQ(vec_dot_type(Type::Q5_0), Type::Q8_0);
  EXPECT_EQ(vec_dot_type(Type::Q8_0), Type::Q8_0);
  EXPECT_EQ(vec_dot_type(Type::Q4_1), Type::Q8_1);
  EXPECT_EQ(vec_dot_type(Type::Q5_1), Type::Q8_1);
  for (Type t : {Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K})
    EXPECT_EQ(vec_dot_type(t), Type::Q8_K);
  for (Type t : {Type::F32, Type::F16, Type::BF16}) EXPECT_EQ(vec_dot_type(t), Type::F32);
}

// The SIMD activation quantizers must be bit-identical to the reference quantize_row.
TEST(VecDot, ActivationQuantizerMatchesReference) {
  const uint32_t seed = testing::fresh_seed();
  SCOPED_TRACE(testing::seed_note(seed));
  std::mt19937 rng(seed);
  for (Type t : {Type::Q8_0, Type::Q8_1, Type::Q8_K, Type::F32}) {
    SCOPED_TRACE(testing::type_label(t));
    const int64_t n = 3 * 256;
    auto x = testing::random_normal(rng, n, 3.0f);
    for (int64_t i = 0; i < 32; ++i) x[size_t(i)] = 0.0f;  // an all-zero block
    x[40] = 1e4f;
    auto fast = testing::row_buffer(t, n), ref = testing::row_buffer(t, n);
    quantize_activation(t, x.data(), fast.data(), n);
    quantize_row(t, x.data(), ref.data(), n);
    EXPECT_EQ(fast, ref);
  }
}

#if defined(__AVX2__)
TEST(VecDot, EveryFormatHasAvx2Kernel) {
  for (Type t : testing::weight_types()) EXPECT_TRUE(vec_dot_has_simd(t)) << type_name(t);
}
#endif

// Extreme quants (all codes at their limits) must not saturate the int16 stages.
TEST(VecDot, ExtremeValues) {
  for (Type w_type : testing::weight_types()) {
    SCOPED_TRACE(testing::type_label(w_type));
    const Type a_type = vec_dot_type(w_type);
    const int64_t n = 512;
    std::vector<float> wf(n), af(n);
    for (int64_t i = 0; i < n; ++i) {
      wf[i] = (i % 3 == 0) ? -1.0f : 1.0f;
      af[i] = (i % 2 == 0) ? -1.0f : 1.0f;
    }
    for (int sign : {1, -1}) {
      for (auto& v : af) v *= float(sign);
      auto w = testing::row_buffer(w_type, n);
      auto a = testing::row_buffer(a_type, n);
      quantize_row(w_type, wf.data(), w.data(), n);
      quantize_activation(a_type, af.data(), a.data(), n);
      const Reference ref = reference_dot(w_type, w.data(), a_type, a.data(), n);
      EXPECT_NEAR(vec_dot(w_type, w.data(), a.data(), n), ref.value,
                  reference_tolerance(w_type) * ref.magnitude);
    }
  }
}

}  // namespace
}  // namespace ember::quant
