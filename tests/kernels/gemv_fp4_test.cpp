// linear_fp4 (kernels/cuda/gemv_fp4.h) against its CPU twin model::linear_forward (cpu::matmul
// on the FP4 type, global scale, pre_quant_scale, low-rank branch, bias). Fresh random
// inputs, awkward shapes (odd row counts, rows of 16·odd), 1..8 tokens and a long input that
// runs in chunks, ranks 0/16/32/64 with F32 and BF16 factors, poisoned outputs.
// NVFP4 decode also runs on 16-bit integer activations (xq/xd workspace): checked against a
// CPU twin of that arithmetic (x' quantized per 16, integer dots of doubled E2M1 codes,
// fp32 block scaling) to float-rounding tolerance, and against the fp32 reference within
// the error the 16-bit rounding of x' allows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda_test_util.h"
#include "model/linear.h"
#include "model/weights.h"
#include "quant/fp4.h"
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
  bool q8 = false;    // NVFP4 GEMV on integer activations (xq/xd workspace)
};

// CPU twin of the integer NVFP4 GEMV's main term (before global scale, low-rank and bias):
// x' = x ⊙ pqs quantized per 16 (d = max|x'| / 32639, q = round-half-even(x' / d)), per
// block Σ q · 2·e2m1 in integers, times e4m3(block scale) · d, summed in double, halved.
std::vector<float> nvfp4_q8_twin(const std::vector<uint8_t>& w, int64_t n_out, int64_t n_in,
                                 const std::vector<float>& x, int n_tokens, const std::vector<float>& pqs) {
  const int64_t nb = n_in / 16, row_bytes = nb * 9;
  std::vector<float> y(size_t(n_tokens * n_out));
  std::vector<int32_t> q(static_cast<size_t>(n_in));
  std::vector<float> d(static_cast<size_t>(nb));
  for (int t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      float v[16], amax = 0.0f;
      for (int i = 0; i < 16; ++i) {
        const int64_t k = b * 16 + i;
        v[i] = pqs.empty() ? x[size_t(t * n_in + k)] : x[size_t(t * n_in + k)] * pqs[size_t(k)];
        amax = std::max(amax, std::fabs(v[i]));
      }
      d[size_t(b)] = amax / 32639.0f;
      for (int i = 0; i < 16; ++i)
        q[size_t(b * 16 + i)] = int32_t(d[size_t(b)] > 0.0f ? std::nearbyint(v[i] / d[size_t(b)]) : 0.0f);
    }
    for (int64_t r = 0; r < n_out; ++r) {
      double acc = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = &w[size_t(r * row_bytes + b * 9)];
        int32_t s = 0;
        for (int i = 0; i < 8; ++i) {
          s += quant::kE2M1Doubled[blk[1 + i] & 15] * q[size_t(b * 16 + 2 * i)];
          s += quant::kE2M1Doubled[blk[1 + i] >> 4] * q[size_t(b * 16 + 2 * i + 1)];
        }
        acc += double(float(s) * (quant::e4m3_to_float(blk[0]) * d[size_t(b)]));
      }
      y[size_t(t * n_out + r)] = float(acc * 0.5);
    }
  }
  return y;
}

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
                                  << " bf16 " << c.bf16_factors << " q8 " << c.q8);
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
  const int64_t chunk = std::min<int64_t>(c.n_tokens, cuda::kGemvFp4MaxTokens);
  DeviceArray<int8_t> xq(size_t(chunk * c.n_in * 2));
  DeviceArray<float> xd(size_t(chunk * c.n_in / 16));
  if (c.q8) {
    p.xq = xq.get();
    p.xd = xd.get();
  }
  const Status st = cuda::linear_fp4(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  const std::vector<float> got = dy.download();
  if (handle != nullptr) cublasDestroy(handle);
  if (c.q8) {
    // twin = scale · main term + (low-rank + bias as the CPU computes them)
    model::Linear plain = l;
    plain.rank = 0;
    plain.bias.clear();
    std::vector<float> main_ref(ref.size());
    model::linear_forward(plain, x.data(), c.n_tokens, main_ref.data(), ThreadPool::global());
    const std::vector<float> q8 = nvfp4_q8_twin(w, c.n_out, c.n_in, x, c.n_tokens, l.pre_quant_scale);
    std::vector<float> twin(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) twin[i] = q8[i] * l.scale + (ref[i] - main_ref[i]);
    EXPECT_LT(normalised_error(got, twin), 2e-5);
    // 16-bit rounding of x' (|error| <= max|x'| / 65278 per value) against fp32
    EXPECT_LT(normalised_error(got, ref), 1e-4);
    if (c.n_tokens <= cuda::kGemvFp4MaxTokens) {  // xq_ready: reuse the quantized x
      dy.poison();
      p.xq_ready = true;
      ASSERT_TRUE(cuda::linear_fp4(p, nullptr).ok());
      EXPECT_LT(normalised_error(dy.download(), twin), 2e-5);
    }
    return;
  }
  // NVFP4: the CPU dots fp32 activations, like the GPU; MXFP4: the CPU quantizes them to Q8_0.
  const double tol = c.gemm ? 1.5e-2 : c.type == Type::NVFP4 ? 2e-5 : 1.5e-2;  // gemm: f16 activations
  EXPECT_LT(normalised_error(got, ref), tol);
}

TEST(GemvFp4, NvFp4MatchesCpuAcrossShapesAndRanks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  for (bool q8 : {false, true})
    for (int rank : {0, 16, 32, 64})
      for (int n_tokens : {1, 3, 8}) {
        run_case({Type::NVFP4, 37, 4096, n_tokens, rank, true, true, true, false, q8});
        run_case({Type::NVFP4, 203, 16 * 37, n_tokens, rank, false, false, false, false, q8});  // unaligned rows
        run_case({Type::NVFP4, 129, 2048 + 16 * 5, n_tokens, rank, rank % 32 == 0, true, false, false, q8});
      }
}

TEST(GemvFp4, NvFp4IntegerActivationsLargeShapes) {
  EMBER_REQUIRE_CUDA_DEVICE();
  run_case({Type::NVFP4, 1030, 14336, 1, 0, false, false, true, false, true});  // several chunks per warp
  run_case({Type::NVFP4, 517, 4096, 2, 32, false, true, true, false, true});
  run_case({Type::NVFP4, 6, 16, 5, 0, true, false, false, false, true});  // one block per row
}

TEST(GemvFp4, NvFp4LongInputRunsInChunks) {
  EMBER_REQUIRE_CUDA_DEVICE();
  run_case({Type::NVFP4, 77, 512, 17, 32, true, true, true});
  run_case({Type::NVFP4, 64, 256 * 3, 1, 0, false, false, true});
  run_case({Type::NVFP4, 77, 512, 17, 32, true, true, true, false, true});  // int8, chunks of 8
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

// linear_fp4_group: three NVFP4 Linears on one x in one launch (different row counts, one
// with bias, two with low-rank branches of ranks 16 and 32 and their own t, computed in one
// t launch; a shared pqs) against the CPU
// reference, and bit for bit against one linear_fp4 call each (same kernel arithmetic).
TEST(GemvFp4, GroupMatchesSingleLaunches) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  for (const int64_t n_in : {int64_t(1024), int64_t(16 * 37)})
    for (int n_tokens : {1, 3, 8})
      for (bool pqs : {false, true}) {
        SCOPED_TRACE(testing::Message() << "n_in " << n_in << " tokens " << n_tokens << " pqs " << pqs);
        const int64_t n_outs[3] = {37, 130, 5};
        const int ranks[3] = {0, 16, 32};
        std::vector<float> pqs_v;
        if (pqs) {
          std::uniform_real_distribution<float> u(0.25f, 2.0f);
          for (int64_t k = 0; k < n_in; ++k) pqs_v.push_back(u(rng));
        }
        const std::vector<float> x = cuda_test::random_normal(rng, size_t(n_tokens * n_in));
        DeviceArray<float> dx(x), dpqs(pqs_v);
        DeviceArray<int8_t> xq(size_t(n_tokens * n_in * 2));
        DeviceArray<float> xd(size_t(n_tokens * n_in / 16));
        std::vector<model::Linear> ls(3);
        std::vector<std::vector<uint8_t>> w(3), a_bytes(3), b_bytes(3);
        std::vector<std::vector<float>> refs(3);
        std::deque<DeviceArray<uint8_t>> dw, da, db;  // not movable: deque keeps them in place
        std::deque<DeviceArray<float>> dbias, dy, dt;
        cuda::LinearFp4Params ps[3];
        for (int m = 0; m < 3; ++m) {
          model::Linear& l = ls[size_t(m)];
          l.name = "group";
          l.type = Type::NVFP4;
          l.n_in = n_in;
          l.n_out = n_outs[m];
          l.row_bytes = *quant::row_bytes(Type::NVFP4, n_in);
          w[size_t(m)].resize(size_t(l.row_bytes * l.n_out));
          const std::vector<float> src = cuda_test::random_normal(rng, size_t(n_in * l.n_out));
          for (int64_t r = 0; r < l.n_out; ++r)
            quant::quantize_row(Type::NVFP4, &src[size_t(r * n_in)], &w[size_t(m)][size_t(r * l.row_bytes)], n_in);
          l.data = w[size_t(m)].data();
          l.scale = 0.5f + 0.25f * float(m);
          l.pre_quant_scale = pqs_v;
          if (m == 0) l.bias = cuda_test::random_normal(rng, size_t(l.n_out));
          if (ranks[m] > 0) {
            a_bytes[size_t(m)] = factor_bytes(cuda_test::random_normal(rng, size_t(ranks[m] * n_in), 0.05f), true);
            b_bytes[size_t(m)] = factor_bytes(cuda_test::random_normal(rng, size_t(l.n_out * ranks[m]), 0.05f), true);
            l.rank = ranks[m];
            l.lowrank_a = {Type::BF16, a_bytes[size_t(m)].data()};
            l.lowrank_b = {Type::BF16, b_bytes[size_t(m)].data()};
          }
          refs[size_t(m)].resize(size_t(n_tokens * l.n_out));
          model::linear_forward(l, x.data(), n_tokens, refs[size_t(m)].data(), ThreadPool::global());
        }
        for (int m = 0; m < 3; ++m) {
          const model::Linear& l = ls[size_t(m)];
          dw.emplace_back(w[size_t(m)]);
          da.emplace_back(a_bytes[size_t(m)]);
          db.emplace_back(b_bytes[size_t(m)]);
          dbias.emplace_back(l.bias);
          dy.emplace_back(refs[size_t(m)].size());
          dt.emplace_back(size_t(cuda::kGemvFp4MaxTokens * std::max(ranks[m], 1)));
        }
        for (int m = 0; m < 3; ++m) {
          const model::Linear& l = ls[size_t(m)];
          cuda::LinearFp4Params& p = ps[m];
          p.w_type = Type::NVFP4;
          p.w = dw[size_t(m)].get();
          p.n_out = l.n_out;
          p.n_in = n_in;
          p.w_row_bytes = l.row_bytes;
          p.scale = l.scale;
          p.pre_quant_scale = pqs ? dpqs.get() : nullptr;
          p.bias = l.bias.empty() ? nullptr : dbias[size_t(m)].get();
          p.rank = l.rank;
          p.a_type = p.b_type = Type::BF16;
          p.lowrank_a = l.rank > 0 ? da[size_t(m)].get() : nullptr;
          p.lowrank_b = l.rank > 0 ? db[size_t(m)].get() : nullptr;
          p.t = dt[size_t(m)].get();
          p.x = dx.get();
          p.n_tokens = n_tokens;
          p.y = dy[size_t(m)].get();
          dy[size_t(m)].poison();
        }
        ps[0].xq = xq.get();
        ps[0].xd = xd.get();
        ASSERT_TRUE(cuda::linear_fp4_group(ps, 3, nullptr).ok());
        for (int m = 0; m < 3; ++m) {
          const std::vector<float> got = dy[size_t(m)].download();
          EXPECT_LT(normalised_error(got, refs[size_t(m)]), 1e-4) << "Linear " << m;
          cuda::LinearFp4Params single = ps[m];
          single.xq = xq.get();
          single.xd = xd.get();
          dy[size_t(m)].poison();
          ASSERT_TRUE(cuda::linear_fp4(single, nullptr).ok());
          const std::vector<float> one = dy[size_t(m)].download();
          for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], one[i]) << "Linear " << m << " at " << i;
        }
        // refused: a Linear on another x, and two low-rank Linears sharing t
        cuda::LinearFp4Params bad[2] = {ps[0], ps[1]};
        bad[1].x = dx.get() + 16;
        EXPECT_FALSE(cuda::linear_fp4_group(bad, 2, nullptr).ok());
        bad[1] = ps[1];
        bad[0].rank = ps[1].rank, bad[0].lowrank_a = ps[1].lowrank_a, bad[0].lowrank_b = ps[1].lowrank_b;
        bad[0].t = ps[1].t;
        EXPECT_FALSE(cuda::linear_fp4_group(bad, 2, nullptr).ok());
        EXPECT_FALSE(cuda::linear_fp4_group(ps, 0, nullptr).ok());
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
