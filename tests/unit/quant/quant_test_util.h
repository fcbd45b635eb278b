// Helpers shared by the quant tests: seeded random data and the formats under test.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "quant/types.h"

namespace ember::quant::testing {

inline const std::vector<Type>& weight_types() {
  static const std::vector<Type> types = {Type::F32,  Type::F16,  Type::BF16, Type::Q4_0, Type::Q4_1,
                                          Type::Q5_0, Type::Q5_1, Type::Q8_0, Type::Q2_K, Type::Q3_K,
                                          Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::MXFP4, Type::NVFP4};
  return types;
}

// A fresh seed per run; tests put it in a SCOPED_TRACE so a failure prints it.
inline uint32_t fresh_seed() { return std::random_device{}(); }

inline std::string seed_note(uint32_t seed) { return "random seed " + std::to_string(seed); }

inline std::vector<float> random_normal(std::mt19937& rng, int64_t n, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<uint8_t> row_buffer(Type type, int64_t n) {
  return std::vector<uint8_t>(size_t(*row_bytes(type, n)));
}

// sqrt(sum (a - b)^2 / sum a^2)
inline double normalised_rms_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(a[i]) * double(a[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline std::string type_label(Type t) { return std::string(type_name(t)); }

}  // namespace ember::quant::testing
