// GPU matmul paths (gemv for few tokens, dequantize + cuBLAS for many) against the
// exact product of the dequantized weights (f64) and against cpu::matmul.
#include <gtest/gtest.h>

#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda_test_util.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;
using quant::Type;

const std::vector<Type>& gpu_types() {
  static const std::vector<Type> t = {Type::F32, Type::F16, Type::BF16, Type::Q4_0, Type::Q4_1,
                                      Type::Q5_0, Type::Q8_0, Type::Q4_K, Type::Q6_K};
  return t;
}

// A random weight of n_out rows x n_in in format `type`, with its dequantized values.
struct TestWeight {
  Type type;
  int64_t n_out, n_in, row_bytes;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized [n_out][n_in]
};

TestWeight make_weight(std::mt19937& rng, Type type, int64_t n_out, int64_t n_in) {
  TestWeight w{type, n_out, n_in, *quant::row_bytes(type, n_in), {}, {}};
  w.bytes.resize(size_t(w.row_bytes * n_out));
  w.values.resize(size_t(n_out * n_in));
  const std::vector<float> src = cuda_test::random_normal(rng, size_t(n_in * n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    quant::quantize_row(type, &src[size_t(r * n_in)], &w.bytes[size_t(r * w.row_bytes)], n_in);
    quant::dequantize_row(type, &w.bytes[size_t(r * w.row_bytes)], &w.values[size_t(r * n_in)], n_in);
  }
  return w;
}

std::vector<float> exact_product(const TestWeight& w, const std::vector<float>& x, int64_t m) {
  std::vector<float> y(size_t(m * w.n_out));
  for (int64_t t = 0; t < m; ++t)
    for (int64_t r = 0; r < w.n_out; ++r) {
      double s = 0;
      for (int64_t k = 0; k < w.n_in; ++k) s += double(w.values[size_t(r * w.n_in + k)]) * x[size_t(t * w.n_in + k)];
      y[size_t(t * w.n_out + r)] = float(s);
    }
  return y;
}

std::vector<float> cpu_product(const TestWeight& w, const std::vector<float>& x, int64_t m) {
  std::vector<float> y(size_t(m * w.n_out));
  cpu::MatmulParams p{w.type, w.bytes.data(), w.n_out, w.n_in, w.row_bytes, x.data(), m, y.data()};
  cpu::matmul(p, ThreadPool::global());
  return y;
}

// Runs cuda::matmul on fresh device copies with a poisoned output.
std::vector<float> gpu_product(const TestWeight& w, const std::vector<float>& x, int64_t m, cublasHandle_t cublas) {
  DeviceArray<uint8_t> dw(w.bytes);
  DeviceArray<float> dx(x), dy(size_t(m * w.n_out));
  DeviceArray<__half> w16(size_t(w.n_out * w.n_in)), x16(size_t(m * w.n_in));
  dy.poison();
  cuda::MatmulParams p{w.type, dw.get(), w.n_out, w.n_in, w.row_bytes, dx.get(), m, dy.get(), cublas, w16.get(),
                       x16.get()};
  const Status st = cuda::matmul(p, nullptr);
  EXPECT_TRUE(st.ok()) << st.message();
  const std::vector<float> y = dy.download();
  if (m > cuda::kGemvMaxTokens) {  // again from the f16 copy left in x16 (x poisoned): same result
    dx.poison();
    dy.poison();
    p.x_f16_ready = true;
    EXPECT_TRUE(cuda::matmul(p, nullptr).ok());
    EXPECT_EQ(dy.download(), y) << "x_f16_ready";
  }
  return y;
}

struct Shape {
  int64_t n_out, n_in;
};

std::vector<Shape> shapes_for(Type t) {
  const int64_t mult = cuda::weight_row_multiple(t) <= 32 ? 32 : 256;
  return {{1, mult}, {17, 3 * mult}, {1000, 2048}, {333, 7 * mult}};
}

TEST(CudaMatmul, GemvMatchesExactAndCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (Type type : gpu_types()) {
    for (Shape s : shapes_for(type)) {
      const TestWeight w = make_weight(rng, type, s.n_out, s.n_in);
      for (int m : {1, 2, 5, 8}) {
        const std::vector<float> x = cuda_test::random_normal(rng, size_t(m * s.n_in));
        const auto got = gpu_product(w, x, m, nullptr);
        const double err_exact = normalised_error(got, exact_product(w, x, m));
        const double err_cpu = normalised_error(got, cpu_product(w, x, m));
        EXPECT_LT(err_exact, 1e-5) << quant::type_name(type) << " " << s.n_out << "x" << s.n_in << " m=" << m;
        EXPECT_LT(err_cpu, 2e-2) << quant::type_name(type) << " " << s.n_out << "x" << s.n_in << " m=" << m;
      }
    }
  }
}

TEST(CudaMatmul, PrefillGemmMatchesExactAndCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  cublasHandle_t cublas = nullptr;
  ASSERT_EQ(cublasCreate(&cublas), CUBLAS_STATUS_SUCCESS);
  for (Type type : gpu_types()) {
    for (Shape s : {Shape{17, 256}, Shape{1000, 512}, Shape{129, 768}}) {
      const TestWeight w = make_weight(rng, type, s.n_out, s.n_in);
      for (int m : {9, 17, 100}) {
        const std::vector<float> x = cuda_test::random_normal(rng, size_t(m * s.n_in));
        const auto got = gpu_product(w, x, m, cublas);
        // f16 operands: ~1e-3 relative per product, averaged over the dot.
        EXPECT_LT(normalised_error(got, exact_product(w, x, m)), 2e-3)
            << quant::type_name(type) << " " << s.n_out << "x" << s.n_in << " m=" << m;
        EXPECT_LT(normalised_error(got, cpu_product(w, x, m)), 2e-2)
            << quant::type_name(type) << " " << s.n_out << "x" << s.n_in << " m=" << m;
      }
    }
  }
  cublasDestroy(cublas);
}

TEST(CudaMatmul, DequantizeF16MatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (Type type : gpu_types()) {
    const TestWeight w = make_weight(rng, type, 37, 512);
    DeviceArray<uint8_t> dw(w.bytes);
    DeviceArray<__half> out(size_t(w.n_out * w.n_in));
    out.poison();
    ASSERT_TRUE(cuda::dequantize_f16({type, dw.get(), w.n_out, w.n_in, w.row_bytes, out.get()}, nullptr).ok());
    const auto h = out.download();
    std::vector<float> got(h.size());
    for (size_t i = 0; i < h.size(); ++i) got[i] = __half2float(h[i]);
    EXPECT_LT(normalised_error(got, w.values), 5e-4) << quant::type_name(type);
  }
}

TEST(CudaMatmul, RejectsUnsupportedAndMisaligned) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DeviceArray<float> x(256), y(8);
  DeviceArray<uint8_t> w(4096);
  cuda::GemvParams p{Type::Q5_1, w.get(), 8, 256, *quant::row_bytes(Type::Q5_1, 256), x.get(), 1, y.get()};
  EXPECT_EQ(cuda::gemv(p, nullptr).kind(), ErrorKind::unsupported);
  p.w_type = Type::Q4_K;
  p.n_in = 128;  // not a whole super-block
  p.w_row_bytes = 72;
  EXPECT_FALSE(cuda::gemv(p, nullptr).ok());
  p = {Type::Q8_0, w.get() + 2, 8, 256, *quant::row_bytes(Type::Q8_0, 256), x.get(), 1, y.get()};
  EXPECT_FALSE(cuda::gemv(p, nullptr).ok());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace ember
