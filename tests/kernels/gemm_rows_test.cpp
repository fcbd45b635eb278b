// cuda::gemm_rows against a CPU reference on the f16-rounded operands (awkward shapes, each
// tile shape, bias, poisoned outputs), and the property the batched decoder relies on: a
// row's result is the same bits whatever else is in the launch.
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cuda/gemm_rows.h"
#include "kernels/cuda_test_util.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;

std::vector<__half> to_half(const std::vector<float>& v) {
  std::vector<__half> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = __float2half_rn(v[i]);
  return h;
}

// y = x · wᵀ + bias in double over the f16 values.
std::vector<float> reference(const std::vector<__half>& x, const std::vector<__half>& w, const std::vector<float>& bias,
                             int64_t m, int64_t n, int64_t k) {
  std::vector<float> y(size_t(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) {
      double s = bias.empty() ? 0.0 : bias[size_t(c)];
      for (int64_t i = 0; i < k; ++i)
        s += double(__half2float(x[size_t(r * k + i)])) * double(__half2float(w[size_t(c * k + i)]));
      y[size_t(r * n + c)] = float(s);
    }
  return y;
}

struct Shape {
  int64_t m, n, k;
  bool bias;
};

TEST(CudaGemmRows, MatchesCpuReference) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // one per tile shape (<= 16, <= 128, more rows), odd N, K not a multiple of the K tile
  // K over kGemmRowsSplitK: chunked sums (1032, 2056: a short last chunk)
  for (const Shape s : {Shape{1, 67, 40, false}, Shape{16, 130, 264, true}, Shape{17, 257, 520, false},
                        Shape{128, 64, 72, true}, Shape{300, 129, 136, true}, Shape{3, 40, 1032, true}, Shape{40, 33, 2056, true},
                        Shape{150, 72, 4104, false}}) {
    SCOPED_TRACE(testing::Message() << s.m << "x" << s.n << "x" << s.k);
    const auto x = to_half(cuda_test::random_normal(rng, size_t(s.m * s.k)));
    const auto w = to_half(cuda_test::random_normal(rng, size_t(s.n * s.k)));
    const auto bias = s.bias ? cuda_test::random_normal(rng, size_t(s.n)) : std::vector<float>();
    DeviceArray<__half> dx(x), dw(w);
    DeviceArray<float> db(bias.empty() ? std::vector<float>(1) : bias), dy(size_t(s.m * s.n));
    const int64_t ws = cuda::gemm_rows_workspace(s.m, s.n, s.k);
    DeviceArray<float> dws(size_t(std::max<int64_t>(ws, 1)));
    dy.poison();
    dws.poison();
    ASSERT_TRUE(cuda::gemm_rows({dx.get(), dw.get(), s.bias ? db.get() : nullptr, dy.get(), s.m, s.n, s.k,
                                 dws.get(), ws}, nullptr).ok());
    const double err = cuda_test::normalised_error(dy.download(), reference(x, w, bias, s.m, s.n, s.k));
    EXPECT_LT(err, 1e-5);
  }
}

void check_rows_independent(int64_t k) {
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", K " + std::to_string(k));
  std::mt19937 rng(seed);
  const int64_t m = 300, n = 200;
  DeviceArray<float> ws(size_t(std::max<int64_t>(cuda::gemm_rows_workspace(m, n, k), 1)));
  const int64_t ws_n = int64_t(ws.size());
  const auto x = to_half(cuda_test::random_normal(rng, size_t(m * k)));
  const auto w = to_half(cuda_test::random_normal(rng, size_t(n * k)));
  const auto bias = cuda_test::random_normal(rng, size_t(n));
  DeviceArray<__half> dx(x), dw(w);
  DeviceArray<float> db(bias), dy(size_t(m * n));
  ASSERT_TRUE(cuda::gemm_rows({dx.get(), dw.get(), db.get(), dy.get(), m, n, k, ws.get(), ws_n}, nullptr).ok());
  const std::vector<float> full = dy.download();
  // sub-batches starting at various rows, one per tile shape
  for (const auto& [row0, rows] : {std::pair<int64_t, int64_t>{0, 1}, {137, 1}, {299, 1}, {5, 16}, {40, 17},
                                  {100, 128}, {1, 200}}) {
    SCOPED_TRACE(testing::Message() << rows << " rows from " << row0);
    DeviceArray<float> part(size_t(rows * n));
    part.poison();
    ASSERT_TRUE(
        cuda::gemm_rows({dx.get() + row0 * k, dw.get(), db.get(), part.get(), rows, n, k, ws.get(), ws_n}, nullptr).ok());
    const std::vector<float> got = part.download();
    EXPECT_EQ(std::memcmp(got.data(), full.data() + row0 * n, got.size() * sizeof(float)), 0)
        << "a row's result depends on the rows beside it";
  }
}

TEST(CudaGemmRows, RowsIndependentOfTheBatch) {
  EMBER_REQUIRE_CUDA_DEVICE();
  check_rows_independent(392);   // one K chunk
  check_rows_independent(4600);  // three
}

TEST(CudaGemmRows, RowsToF16Gathers) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  const int64_t width = 37;
  const auto x = cuda_test::random_normal(rng, size_t(10 * width));
  const std::vector<int32_t> rows = {9, 0, 4, 4};
  DeviceArray<float> dx(x);
  DeviceArray<int32_t> dr(rows);
  DeviceArray<__half> dy(rows.size() * size_t(width));
  dy.poison();
  ASSERT_TRUE(cuda::rows_to_f16({dx.get(), dr.get(), dy.get(), int64_t(rows.size()), width}, nullptr).ok());
  const auto got = dy.download();
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t c = 0; c < width; ++c)
      ASSERT_EQ(__half2float(got[r * size_t(width) + size_t(c)]),
                __half2float(__float2half_rn(x[size_t(rows[r] * width + c)])));
}

TEST(CudaGemmRows, RejectsBadShapes) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DeviceArray<__half> x(64), w(64);
  DeviceArray<float> y(64);
  EXPECT_FALSE(cuda::gemm_rows({x.get(), w.get(), nullptr, y.get(), 2, 2, 12}, nullptr).ok()) << "K % 8 != 0";
  EXPECT_FALSE(cuda::gemm_rows({x.get() + 1, w.get(), nullptr, y.get(), 1, 1, 8}, nullptr).ok()) << "misaligned";
  EXPECT_FALSE(cuda::gemm_rows({x.get(), w.get(), nullptr, y.get(), -1, 1, 8}, nullptr).ok());
  DeviceArray<__half> xk(4096), wk(4096);
  EXPECT_FALSE(cuda::gemm_rows({xk.get(), wk.get(), nullptr, y.get(), 1, 1, 4096}, nullptr).ok()) << "no workspace";
}

}  // namespace
}  // namespace ember
