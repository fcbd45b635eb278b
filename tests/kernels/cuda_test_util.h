// Helpers for the GPU kernel tests: device arrays with poisoning, error norms, seeds.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace ember::cuda_test {

#define EMBER_REQUIRE_CUDA_DEVICE() \
  if (!::ember::cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped"

// sqrt(sum (got - ref)^2 / sum ref^2); NaN anywhere (e.g. an unwritten poisoned output) gives NaN.
inline double normalised_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(got[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline uint32_t fresh_seed() { return std::random_device{}(); }

inline std::vector<float> random_normal(std::mt19937& rng, size_t n, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A device allocation of n elements of T, freed on destruction.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    if (cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) p_ = nullptr;
    EXPECT_NE(p_, nullptr) << "cudaMalloc of " << n << " elements failed";
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(p_); }

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    ASSERT_EQ(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  // Fills every byte with 0xff: NaN for floats, so unwritten outputs fail the comparison.
  void poison() { ASSERT_EQ(cudaMemset(p_, 0xff, n_ * sizeof(T)), cudaSuccess); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace ember::cuda_test
