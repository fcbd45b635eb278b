// GPU RMSNorm vs the CPU twin. Skips cleanly when no GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/norm.h"

namespace ember {
namespace {

double normalised_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST(CudaNorm, RmsNormMatchesCpu) {
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (auto [rows, cols] : {std::pair{1, 1}, {17, 576}, {3, 1000}, {5, 4097}}) {
    std::vector<float> x(size_t(rows) * cols), w(static_cast<size_t>(cols)), ref(x.size()), got(x.size());
    for (auto& v : x) v = dist(rng);
    for (auto& v : w) v = dist(rng);
    for (int r = 0; r < rows; ++r) cpu::rms_norm(&x[size_t(r) * cols], w.data(), &ref[size_t(r) * cols], cols, 1e-6f);
    float *dx, *dw, *dy;
    ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dw, w.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dy, x.size() * 4), cudaSuccess);
    cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
    cudaMemset(dy, 0xff, x.size() * 4);  // poison (NaN)
    cuda::RmsNormParams p{dx, dw, dy, rows, cols, 1e-6f};
    ASSERT_TRUE(cuda::rms_norm(p, nullptr).ok());
    ASSERT_EQ(cudaMemcpy(got.data(), dy, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dy);
    EXPECT_LT(normalised_error(got, ref), 1e-5) << rows << "x" << cols;
  }
}

}  // namespace
}  // namespace ember
