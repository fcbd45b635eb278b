// linear_fp4 (kernels/cuda/gemv_fp4.h) against its CPU twin model::linear_forward (cpu::matmul
// on the FP4 type, global scale, pre_quant_scale, low-rank branch, bias). Fresh random
// inputs, awkward shapes (odd row counts, rows of 16·odd), 1..8 tokens and a long input that
// runs in chunks, ranks 0/16/32/64 with F32 and BF16 factors, poisoned outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda_test_util.h"
#include "model/linear.h"
#include "model/weights.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;
using quant::Type;

struct Case {
  Type type;
  int64_t n_out, n_in;
  int n_tokens, rank;
  bool pqs, bias, bf16_factors;
  bool gemm = false;  // many tokens through dequantize + cuBLAS
};

std::vector<uint8_t> factor_bytes(const std::vector<float>& v, bool bf16) {
  std::vector<uint8_t> out(v.size() * (bf16 ? 2 : 4));
  for (size_t i = 0; i < v.size(); ++i) {
    if (bf16) {
      const uint16_t h = fp32_to_bf16(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v[i], 4);
    }
  }
  return out;
}

void run_case(const Case& c) {
  std::mt19937 rng(cuda_test::fresh_seed());
  SCOPED_TRACE(testing::Message() << quant::type_name(c.type) << " " << c.n_out << "x" << c.n_in << " tokens "
                                  << c.n_tokens << " rank " << c.rank << " pqs " << c.pqs << " bias " << c.bias
                                  << " bf16 " << c.bf16_factors);
  model::Linear l;
  l.name = "test";
  l.type = c.type;
  l.n_in = c.n_in;
  l.n_out = c.n_out;
  l.row_bytes = *quant::row_bytes(c.type, c.n_in);
  std::vector<uint8_t> w(size_t(l.row_bytes * c.n_out));
  const std::vector<float> src = cuda_test::random_normal(rng, size_t(c.n_in * c.n_out));
  for (int64_t r = 0; r < c.n_out; ++r)
    quant::quantize_row(c.type, &src[size_t(r * c.n_in)], &w[size_t(r * l.row_bytes)], c.n_in);
  l.data = w.data();
  l.scale = c.type == Type::NVFP4 ? 0.37f : 1.0f;
  if (c.pqs) {
    std::uniform_real_distribution<float> u(0.25f, 2.0f);
    l.pre_quant_scale.resize(size_t(c.n_in));
    for (float& s : l.pre_quant_scale) s = u(rng);
  }
  if (c.bias) l.bias = cuda_test::random_normal(rng, size_t(c.n_out));
  const Type ft = c.bf16_factors ? Type::BF16 : Type::F32;
  std::vector<uint8_t> a_bytes, b_bytes;
  if (c.rank > 0) {
    a_bytes = factor_bytes(cuda_test::random_normal(rng, size_t(c.rank * c.n_in), 0.05f), c.bf16_factors);
    b_bytes = factor_bytes(cuda_test::random_normal(rng, size_t(c.n_out * c.rank), 0.05f), c.bf16_factors);
    l.rank = c.rank;
    l.lowrank_a = {ft, a_bytes.data()};
    l.lowrank_b = {ft, b_bytes.data()};
  }
  const std::vector<float> x = cuda_test::random_normal(rng, size_t(c.n_tokens * c.n_in));
  std::vector<float> ref(size_t(c.n_tokens * c.n_out));
  model::linear_forward(l, x.data(), c.n_tokens, ref.data(), ThreadPool::global());

  DeviceArray<uint8_t> dw(w), da(a_bytes), db(b_bytes);
  DeviceArray<float> dx(x), dpqs(l.pre_quant_scale), dbias(l.bias), dy(ref.size());
  DeviceArray<float> dt(size_t(cuda::kGemvFp4MaxTokens * std::max(c.rank, 1)));
  dy.poison();
  dt.poison();
  cuda::LinearFp4Params p;
  p.w_type = c.type;
  p.w = dw.get();
  p.n_out = c.n_out;
  p.n_in = c.n_in;
  p.w_row_bytes = l.row_bytes;
  p.scale = l.scale;
  p.pre_quant_scale = c.pqs ? dpqs.get() : nullptr;
  p.bias = c.bias ? dbias.get() : nullptr;
  p.rank = c.rank;
  p.a_type = p.b_type = ft;
  p.lowrank_a = c.rank > 0 ? da.get() : nullptr;
  p.lowrank_b = c.rank > 0 ? db.get() : nullptr;
  p.t = dt.get();
  p.x = dx.get();
  p.n_tokens = c.n_tokens;
  p.y = dy.get();
  cublasHandle_t handle = nullptr;
  DeviceArray<__half> w16(size_t(std::max<int64_t>(c.n_out, c.rank) * c.n_in)), x16(size_t(c.n_tokens * c.n_in));
  DeviceArray<float> xs(size_t(c.n_tokens * c.n_in)), t_rows(size_t(c.n_tokens * std::max(c.rank, 1)));
  if (c.gemm) {
    ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
    p.cublas = handle;
    p.w_f16 = w16.get();
    p.x_f16 = x16.get();
    p.xs = xs.get();
    p.t_rows = t_rows.get();
  }
  const Status st = cuda::linear_fp4(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  const std::vector<float> got = dy.download();
  if (handle != nullptr) cublasDestroy(handle);
  // NVFP4: the CPU dots fp32 activations, like the GPU; MXFP4: the CPU quantizes them to Q8_0.
  const double tol = c.gemm ? 1.5e-2 : c.type == Type::NVFP4 ? 2e-5 : 1.5e-2;  // gemm: f16 activations
  EXPECT_LT(normalised_error(got, ref), tol);
}

TEST(GemvFp4, NvFp4MatchesCpuAcrossShapesAndRanks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (int rank : {0, 16, 32, 64})
    for (int n_tokens : {1, 3, 8}) {
      run_case({Type::NVFP4, 37, 4096, n_tokens, rank, true, true, true});
      run_case({Type::NVFP4, 203, 16 * 37, n_tokens, rank, false, false, false});   // unaligned rows
      run_case({Type::NVFP4, 129, 2048 + 16 * 5, n_tokens, rank, rank % 32 == 0, true, false});
    }
}

TEST(GemvFp4, NvFp4LongInputRunsInChunks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  run_case({Type::NVFP4, 77, 512, 17, 32, true, true, true});
  run_case({Type::NVFP4, 64, 256 * 3, 1, 0, false, false, true});
}

TEST(GemvFp4, PrefillGemmMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (int rank : {0, 32}) {
    run_case({Type::NVFP4, 77, 1024, 37, rank, true, true, true, true});
    run_case({Type::NVFP4, 130, 16 * 37, 9, rank, rank > 0, false, false, true});
    run_case({Type::MXFP4, 45, 32 * 23, 20, rank, true, true, true, true});
  }
}

TEST(GemvFp4, MxFp4MatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (int n_tokens : {1, 5}) {
    run_case({Type::MXFP4, 45, 2048, n_tokens, 0, false, false, true});
    run_case({Type::MXFP4, 19, 32 * 23, n_tokens, 16, true, true, true});
  }
}

TEST(GemvFp4, RejectsBadShapes) {
  cuda::LinearFp4Params p;
  p.w_type = Type::Q4_K;
  EXPECT_FALSE(cuda::linear_fp4(p, nullptr).ok());
  p.w_type = Type::NVFP4;
  p.n_in = 24;
  EXPECT_FALSE(cuda::linear_fp4(p, nullptr).ok());
}

}  // namespace
}  // namespace ember
