// Decode GEMV (gemv.h) against CPU twins: quantize_q8 against a scalar reference;
// gemv_batch against (a) the exact product of the dequantized weights with the int8
// activations it was given (f64), (b) cpu::matmul, which quantizes activations the same
// way, and (c) the product with the unquantized activations. Fresh random inputs,
// awkward row counts, 1..8 tokens, poisoned outputs; several matrices per launch and
// the gated (act(gate) · up) epilogue.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda_test_util.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;
using quant::Type;

struct Weight {
  Type type;
  int64_t n_out, n_in, row_bytes;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized [n_out][n_in]
};

Weight make_weight(std::mt19937& rng, Type type, int64_t n_out, int64_t n_in) {
  Weight w{type, n_out, n_in, *quant::row_bytes(type, n_in), {}, {}};
  w.bytes.resize(size_t(w.row_bytes * n_out));
  w.values.resize(size_t(n_out * n_in));
  const std::vector<float> src = cuda_test::random_normal(rng, size_t(n_in * n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    quant::quantize_row(type, &src[size_t(r * n_in)], &w.bytes[size_t(r * w.row_bytes)], n_in);
    quant::dequantize_row(type, &w.bytes[size_t(r * w.row_bytes)], &w.values[size_t(r * n_in)], n_in);
  }
  return w;
}

// The CPU twin of quantize_q8.
void quantize_q8_ref(const std::vector<float>& x, std::vector<int8_t>& q, std::vector<float>& d) {
  q.resize(x.size());
  d.resize(x.size() / 32);
  for (size_t b = 0; b < d.size(); ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    d[b] = amax / 127.0f;
    for (int i = 0; i < 32; ++i) q[32 * b + i] = int8_t(d[b] > 0 ? std::nearbyint(x[32 * b + i] / d[b]) : 0);
  }
}

std::vector<float> product(const Weight& w, const std::vector<float>& x, int m) {
  std::vector<float> y(size_t(m) * size_t(w.n_out));
  for (int t = 0; t < m; ++t)
    for (int64_t r = 0; r < w.n_out; ++r) {
      double s = 0;
      for (int64_t k = 0; k < w.n_in; ++k) s += double(w.values[size_t(r * w.n_in + k)]) * x[size_t(t * w.n_in + k)];
      y[size_t(t * w.n_out + r)] = float(s);
    }
  return y;
}

// Σ_k |w[r][k]| · |x[t][k]|: the scale a dot product's rounding and quantization errors
// are relative to (a plain relative error is meaningless for a single dot near zero).
std::vector<float> abs_product(const Weight& w, const std::vector<float>& x, int m) {
  Weight a = w;
  for (auto& v : a.values) v = std::fabs(v);
  std::vector<float> ax(x.size());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  return product(a, ax, m);
}

// sqrt(Σ (got - ref)² / Σ scale²)
double scaled_error(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& scale) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(scale[i]) * scale[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

std::vector<float> cpu_product(const Weight& w, const std::vector<float>& x, int m) {
  std::vector<float> y(size_t(m) * size_t(w.n_out));
  cpu::MatmulParams p{w.type, w.bytes.data(), w.n_out, w.n_in, w.row_bytes, x.data(), m, y.data()};
  cpu::matmul(p, ThreadPool::global());
  return y;
}

// Device inputs of one gemv_batch call: x as f32 and as quantize_q8 output.
struct Input {
  std::vector<float> x, xdeq;  // xdeq: the int8 activations times their scales
  DeviceArray<float> dx;
  DeviceArray<int8_t> xq;
  DeviceArray<float> xd;
  Input(std::mt19937& rng, int m, int64_t n_in)
      : x(cuda_test::random_normal(rng, size_t(m * n_in))), dx(x), xq(x.size()), xd(x.size() / 32 + 1) {
    xdeq = x;
    if (n_in % 32 != 0) return;  // float formats only: no int8 activations
    EXPECT_TRUE(cuda::quantize_q8({dx.get(), n_in, m, xq.get(), xd.get()}, nullptr).ok());
    const auto q = xq.download();
    const auto d = xd.download();
    xdeq.resize(x.size());
    for (size_t i = 0; i < x.size(); ++i) xdeq[i] = float(q[i]) * d[i / 32];
  }
  void bind(cuda::GemvBatchParams& p) const {
    p.x = dx.get();
    p.xq = xq.get();
    p.xd = xd.get();
  }
  const std::vector<float>& seen(Type t) const { return cuda::gemv_fast_uses_q8(t) ? xdeq : x; }
};

struct Case {
  Type type;
  std::vector<int64_t> n_ins;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {{Type::F16, {8, 264, 2048}},  {Type::BF16, {8, 264}},
                                      {Type::Q4_K, {256, 768, 4096}}, {Type::Q8_0, {256, 1280, 4096}},
                                      {Type::Q6_K, {2048, 4096}}};
  return c;
}

TEST(CudaGemv, QuantizeQ8MatchesReference) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int m : {1, 5}) {
    const int64_t n = 32 * 37;
    std::vector<float> x = cuda_test::random_normal(rng, size_t(m * n), 3.0f);
    for (int i = 0; i < 32; ++i) x[size_t(32 + i)] = 0.0f;  // an all-zero group: d = 0, q = 0
    DeviceArray<float> dx(x);
    DeviceArray<int8_t> q(x.size());
    DeviceArray<float> d(x.size() / 32);
    q.poison();
    d.poison();
    ASSERT_TRUE(cuda::quantize_q8({dx.get(), n, m, q.get(), d.get()}, nullptr).ok());
    std::vector<int8_t> rq;
    std::vector<float> rd;
    quantize_q8_ref(x, rq, rd);
    const auto gq = q.download();
    const auto gd = d.download();
    EXPECT_LT(normalised_error(gd, rd), 1e-6);
    int off = 0;
    for (size_t i = 0; i < rq.size(); ++i) off += std::abs(int(gq[i]) - int(rq[i])) > 1 ? 1 : 0;
    EXPECT_EQ(off, 0);
  }
}

TEST(CudaGemv, SingleMatrixMatchesCpuTwins) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Case& c : cases()) {
    for (int64_t n_in : c.n_ins) {
      ASSERT_TRUE(cuda::gemv_fast_supported(c.type, n_in));
      for (int64_t n_out : {int64_t(1), int64_t(17), int64_t(333)}) {
        const Weight w = make_weight(rng, c.type, n_out, n_in);
        DeviceArray<uint8_t> dw(w.bytes);
        for (int m : {1, 3, 8}) {
          const Input in(rng, m, n_in);
          DeviceArray<float> y(size_t(m * n_out));
          y.poison();
          cuda::GemvBatchParams p;
          p.w_type = c.type;
          p.n_in = n_in;
          p.w_row_bytes = w.row_bytes;
          p.mats[0] = {dw.get(), y.get(), n_out};
          p.n_tokens = m;
          p.q4k_direct = (n_out + m) % 2 == 0;  // both Q4_K variants
          p.pdl = p.pdl_late_wait = m == 3;     // PDL launch, wait after the first weight loads
          in.bind(p);
          const Status st = cuda::gemv_batch(p, nullptr);
          ASSERT_TRUE(st.ok()) << st.message();
          const auto got = y.download();
          const std::string what = std::string(quant::type_name(c.type)) + " " + std::to_string(n_out) + "x" +
                                   std::to_string(n_in) + " m=" + std::to_string(m);
          const auto scale = abs_product(w, in.x, m);
          EXPECT_LT(scaled_error(got, product(w, in.seen(c.type), m), scale), 1e-6) << what;
          EXPECT_LT(scaled_error(got, cpu_product(w, in.x, m), scale), 1e-2) << what;
          EXPECT_LT(scaled_error(got, product(w, in.x, m), scale), 1e-2) << what;
          if (n_out >= 17) {
            EXPECT_LT(normalised_error(got, product(w, in.seen(c.type), m)), 1e-5) << what;
          }
        }
      }
    }
  }
}

TEST(CudaGemv, SeveralMatricesAndGatedEpilogue) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Case& c : cases()) {
    const int64_t n_in = c.n_ins.back();
    const std::vector<int64_t> rows = {45, 7, 19};
    std::vector<Weight> ws;
    std::vector<std::unique_ptr<DeviceArray<uint8_t>>> dws;
    for (int64_t r : rows) {
      ws.push_back(make_weight(rng, c.type, r, n_in));
      dws.push_back(std::make_unique<DeviceArray<uint8_t>>(ws.back().bytes));
    }
    for (int m : {1, 6}) {
      const Input in(rng, m, n_in);
      std::vector<std::unique_ptr<DeviceArray<float>>> ys;
      cuda::GemvBatchParams p;
      p.w_type = c.type;
      p.n_in = n_in;
      p.w_row_bytes = ws[0].row_bytes;
      p.n_tokens = m;
      p.n_mats = 3;
      for (size_t i = 0; i < rows.size(); ++i) {
        ys.push_back(std::make_unique<DeviceArray<float>>(size_t(m * rows[i])));
        ys.back()->poison();
        p.mats[i] = {dws[i]->get(), ys.back()->get(), rows[i]};
      }
      in.bind(p);
      ASSERT_TRUE(cuda::gemv_batch(p, nullptr).ok());
      for (size_t i = 0; i < rows.size(); ++i)
        EXPECT_LT(normalised_error(ys[i]->download(), product(ws[i], in.seen(c.type), m)), 1e-5)
            << quant::type_name(c.type) << " matrix " << i << " m=" << m;

      // gated: mats 0 (gate) and 1 (up) of equal rows
      const Weight up = make_weight(rng, c.type, rows[0], n_in);
      DeviceArray<uint8_t> dup(up.bytes);
      DeviceArray<float> out(size_t(m * rows[0]));
      out.poison();
      p.n_mats = 2;
      p.mats[0] = {dws[0]->get(), out.get(), rows[0]};
      p.mats[1] = {dup.get(), nullptr, rows[0]};
      p.epilogue = cuda::GemvEpilogue::gated;
      for (int variant = 0; variant < 4; ++variant) {
        const auto act = variant % 2 == 0 ? cuda::GatedAct::silu : cuda::GatedAct::gelu_tanh;
        p.act = act;
        p.mats[1].y = out.get();  // unused, but must be set
        // variants 2, 3: Q4_K read in place (gate and up rows together) under PDL with
        // the wait after the first weight loads
        p.q4k_direct = p.pdl = p.pdl_late_wait = variant >= 2;
        out.poison();
        ASSERT_TRUE(cuda::gemv_batch(p, nullptr).ok());
        const auto g = product(ws[0], in.seen(c.type), m), u = product(up, in.seen(c.type), m);
        std::vector<float> ref(g.size());
        for (size_t k = 0; k < g.size(); ++k) {
          const double x = g[k];
          const double a = act == cuda::GatedAct::silu
                               ? x / (1 + std::exp(-x))
                               : 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
          ref[k] = float(a * u[k]);
        }
        EXPECT_LT(normalised_error(out.download(), ref), 1e-5) << quant::type_name(c.type) << " gated m=" << m << " variant " << variant;
      }
    }
  }
}

TEST(CudaGemv, RejectsBadParams) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DeviceArray<uint8_t> w(1 << 16);
  DeviceArray<float> x(4096), y(64);
  DeviceArray<int8_t> xq(4096);
  cuda::GemvBatchParams p;
  p.w_type = Type::Q6_K;
  p.n_in = 256;  // Q6_K needs rows of a multiple of 2048
  p.w_row_bytes = 210;
  p.mats[0] = {w.get(), y.get(), 4};
  p.xq = xq.get();
  p.xd = x.get();
  EXPECT_EQ(cuda::gemv_batch(p, nullptr).kind(), ErrorKind::unsupported);
  p.w_type = Type::Q4_0;
  EXPECT_FALSE(cuda::gemv_batch(p, nullptr).ok());
  p.w_type = Type::Q4_K;
  p.w_row_bytes = 144;
  p.xq = nullptr;  // q8 activations missing
  EXPECT_FALSE(cuda::gemv_batch(p, nullptr).ok());
  p.xq = xq.get();
  p.mats[0].w = w.get() + 8;  // misaligned
  EXPECT_FALSE(cuda::gemv_batch(p, nullptr).ok());
  p.mats[0].w = w.get();
  p.n_tokens = 9;
  EXPECT_FALSE(cuda::gemv_batch(p, nullptr).ok());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace ember
