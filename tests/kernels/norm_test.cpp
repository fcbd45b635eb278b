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

// Per-head q/k norm: rows = tokens * heads of head_dim, one weight vector for all heads.
TEST(CudaNorm, PerHeadNormMatchesCpu) {
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int hd : {64, 128, 256}) {
    const int rows = 17 * 3;
    std::vector<float> x(size_t(rows) * hd), w(static_cast<size_t>(hd)), ref(x.size());
    for (auto& v : x) v = dist(rng);
    for (auto& v : w) v = dist(rng);
    for (int r = 0; r < rows; ++r) cpu::rms_norm(&x[size_t(r) * hd], w.data(), &ref[size_t(r) * hd], hd, 1e-6f);
    float *dx, *dw;
    ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dw, w.size() * 4), cudaSuccess);
    cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
    ASSERT_TRUE(cuda::rms_norm({dx, dw, dx, rows, hd, 1e-6f}, nullptr).ok());  // in place, as the decoder does
    std::vector<float> got(x.size());
    ASSERT_EQ(cudaMemcpy(got.data(), dx, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    cudaFree(dx);
    cudaFree(dw);
    EXPECT_LT(normalised_error(got, ref), 1e-5) << "head_dim " << hd;
  }
}

// x += post_norm(delta); y = norm(x): every combination of the optional parts.
TEST(CudaNorm, ResidualNormMatchesCpu) {
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (auto [rows, cols] : {std::pair{1, 8}, {17, 576}, {3, 1000}, {5, 4097}, {1, 4096}, {2, 8192}, {1, 8196}}) {
    for (bool post : {false, true}) {
      for (bool next : {false, true}) {
        const size_t n = size_t(rows) * cols;
        std::vector<float> x(n), delta(n), dw(static_cast<size_t>(cols)), w(static_cast<size_t>(cols));
        for (auto* v : {&x, &delta, &dw, &w})
          for (auto& e : *v) e = dist(rng);
        std::vector<float> ref_x = x, ref_delta = delta, ref_y(n);
        for (int r = 0; r < rows; ++r) {
          float* d = &ref_delta[size_t(r) * cols];
          if (post) cpu::rms_norm(d, dw.data(), d, cols, 1e-6f);
          for (int i = 0; i < cols; ++i) ref_x[size_t(r) * cols + i] += d[i];
          cpu::rms_norm(&ref_x[size_t(r) * cols], w.data(), &ref_y[size_t(r) * cols], cols, 1e-6f);
        }
        float *gx, *gd, *gdw, *gw, *gy;
        for (float** p : {&gx, &gd, &gy}) ASSERT_EQ(cudaMalloc(p, n * 4), cudaSuccess);
        for (float** p : {&gdw, &gw}) ASSERT_EQ(cudaMalloc(p, size_t(cols) * 4), cudaSuccess);
        cudaMemcpy(gx, x.data(), n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(gd, delta.data(), n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(gdw, dw.data(), size_t(cols) * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(gw, w.data(), size_t(cols) * 4, cudaMemcpyHostToDevice);
        cudaMemset(gy, 0xff, n * 4);
        const cuda::ResidualNormParams p{gx, gd, post ? gdw : nullptr, gw, next ? gy : nullptr, rows, cols, 1e-6f};
        ASSERT_TRUE(cuda::residual_norm(p, nullptr).ok());
        std::vector<float> got_x(n), got_d(n), got_y(n);
        ASSERT_EQ(cudaMemcpy(got_x.data(), gx, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(got_d.data(), gd, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(got_y.data(), gy, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        for (float* q : {gx, gd, gdw, gw, gy}) cudaFree(q);
        EXPECT_LT(normalised_error(got_x, ref_x), 1e-6) << rows << "x" << cols << " post " << post;
        EXPECT_LT(normalised_error(got_d, ref_delta), 1e-5) << rows << "x" << cols << " post " << post;
        if (next) {
          EXPECT_LT(normalised_error(got_y, ref_y), 1e-5) << rows << "x" << cols << " post " << post;
        }
      }
    }
  }
}

// The int8 copy of y (for the decode GEMV) matches quantizing the CPU's y per 32 columns.
TEST(CudaNorm, ResidualNormInt8OutputMatchesCpu) {
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (auto [rows, cols] : {std::pair{1, 4096}, {3, 2080}, {8, 8192}, {2, 32}}) {
    ASSERT_TRUE(cuda::residual_norm_q8_supported(cols));
    const size_t n = size_t(rows) * cols;
    std::vector<float> x(n), delta(n), w(static_cast<size_t>(cols));
    for (auto* v : {&x, &delta, &w})
      for (auto& e : *v) e = dist(rng);
    std::vector<float> ref_y(n), ref_x = x;
    for (size_t i = 0; i < n; ++i) ref_x[i] += delta[i];
    for (int r = 0; r < rows; ++r) cpu::rms_norm(&ref_x[size_t(r) * cols], w.data(), &ref_y[size_t(r) * cols], cols, 1e-6f);
    float *gx, *gd, *gw, *gy, *gyd;
    int8_t* gyq;
    for (float** p : {&gx, &gd, &gy}) ASSERT_EQ(cudaMalloc(p, n * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&gw, size_t(cols) * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&gyd, n / 32 * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&gyq, n), cudaSuccess);
    cudaMemcpy(gx, x.data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(gd, delta.data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(gw, w.data(), size_t(cols) * 4, cudaMemcpyHostToDevice);
    cudaMemset(gyq, 0x7f, n);
    cudaMemset(gyd, 0xff, n / 32 * 4);
    cuda::ResidualNormParams p{gx, gd, nullptr, gw, gy, rows, cols, 1e-6f};
    p.yq = gyq;
    p.yd = gyd;
    ASSERT_TRUE(cuda::residual_norm(p, nullptr).ok());
    std::vector<int8_t> q(n);
    std::vector<float> d(n / 32);
    ASSERT_EQ(cudaMemcpy(q.data(), gyq, n, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d.data(), gyd, n / 32 * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    for (void* ptr : {(void*)gx, (void*)gd, (void*)gw, (void*)gy, (void*)gyd, (void*)gyq}) cudaFree(ptr);
    std::vector<float> deq(n), ref_d(n / 32);
    int far = 0;
    for (size_t g = 0; g < n / 32; ++g) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(ref_y[32 * g + i]));
      ref_d[g] = amax / 127.0f;
      for (int i = 0; i < 32; ++i) {
        const int rq = int(std::nearbyint(ref_y[32 * g + i] / ref_d[g]));
        far += std::abs(rq - int(q[32 * g + i])) > 1 ? 1 : 0;
        deq[32 * g + i] = float(q[32 * g + i]) * d[g];
      }
    }
    EXPECT_LT(normalised_error(d, ref_d), 1e-5) << rows << "x" << cols;
    EXPECT_EQ(far, 0) << rows << "x" << cols;
    EXPECT_LT(normalised_error(deq, ref_y), 1e-2) << rows << "x" << cols;
  }
  // Unsupported shapes are refused, not silently left unwritten.
  cuda::ResidualNormParams bad{nullptr, nullptr, nullptr, nullptr, nullptr, 1, 48, 1e-6f};
  int8_t dummy_q[64];
  float dummy_d[2];
  bad.yq = dummy_q;
  bad.yd = dummy_d;
  EXPECT_FALSE(cuda::residual_norm(bad, nullptr).ok());
}

}  // namespace
}  // namespace ember
