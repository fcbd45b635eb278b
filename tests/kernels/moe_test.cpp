// Mixture-of-experts kernels (moe.h) against their CPU twins: moe_route against
// model::route, moe_group against model::group_by_expert, moe_gemv (plain and gated,
// shared or per-pair input) against the f64 product of the dequantized expert rows with
// the activations it read (int8-quantized like quantize_q8 for the block formats), and
// moe_combine against the weighted sum. Fresh random inputs, awkward shapes, poisoned
// outputs and poisoned row padding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cuda/gemv.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda_test_util.h"
#include "model/moe.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;
using quant::Type;

struct RouteCase {
  int n_tokens, n_experts, k;
  model::MoeGating gating;
  bool norm, per_expert_scale;
  float weights_scale;
};

TEST(CudaMoe, RouteMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const RouteCase cases[] = {{17, 8, 2, model::MoeGating::softmax, true, false, 1.0f},
                             {5, 128, 8, model::MoeGating::softmax, true, false, 1.0f},
                             {33, 60, 4, model::MoeGating::softmax, false, false, 1.0f},
                             {9, 256, 8, model::MoeGating::sigmoid, true, true, 2.5f},
                             {3, 1000, 16, model::MoeGating::softmax, false, true, 1.0f}};
  for (const RouteCase& c : cases) {
    SCOPED_TRACE(std::to_string(c.n_experts) + " experts top-" + std::to_string(c.k));
    std::vector<float> logits = cuda_test::random_normal(rng, size_t(c.n_tokens) * size_t(c.n_experts), 2.0f);
    for (int t = 0; t < c.n_tokens; t += 4) logits[size_t(t) * size_t(c.n_experts) + 3] = logits[size_t(t) * size_t(c.n_experts)];  // ties
    std::vector<float> scale = cuda_test::random_normal(rng, size_t(c.n_experts));
    model::MoeSpec ms;
    ms.n_experts = c.n_experts;
    ms.n_experts_used = c.k;
    ms.gating = c.gating;
    ms.norm_topk = c.norm;
    ms.weights_scale = c.weights_scale;
    model::Routing ref;
    model::route(ms, logits.data(), c.n_tokens, c.per_expert_scale ? scale.data() : nullptr, ref);

    DeviceArray<float> d_logits(logits), d_scale(scale), d_w(size_t(c.n_tokens) * size_t(c.k));
    DeviceArray<int32_t> d_e(size_t(c.n_tokens) * size_t(c.k));
    d_w.poison();
    d_e.poison();
    cuda::MoeRouteParams p;
    p.logits = d_logits.get();
    p.n_tokens = c.n_tokens;
    p.n_experts = c.n_experts;
    p.k = c.k;
    p.sigmoid = c.gating == model::MoeGating::sigmoid;
    p.norm_topk = c.norm;
    p.weights_scale = c.weights_scale;
    p.per_expert_scale = c.per_expert_scale ? d_scale.get() : nullptr;
    p.experts = d_e.get();
    p.weights = d_w.get();
    ASSERT_TRUE(cuda::moe_route(p, nullptr).ok());
    const std::vector<int32_t> e = d_e.download();
    const std::vector<float> w = d_w.download();
    EXPECT_EQ(e, ref.expert);
    for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], ref.weight[i], 1e-6f * (1.0f + std::fabs(ref.weight[i]))) << i;
  }
}

TEST(CudaMoe, GroupMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (auto [n_tokens, n_experts, k] : {std::tuple{1, 8, 2}, {17, 8, 2}, {300, 128, 8}, {2048, 128, 8}, {7, 1000, 3}}) {
    model::Routing r;
    r.n_tokens = n_tokens;
    r.k = k;
    std::uniform_int_distribution<int32_t> pick(0, n_experts / 3);  // skewed: some experts get no rows
    for (int i = 0; i < n_tokens * k; ++i) r.expert.push_back(pick(rng) * 3 % n_experts);
    model::ExpertGroups g;
    model::group_by_expert(r, n_experts, g);
    const size_t pairs = r.expert.size();
    DeviceArray<int32_t> d_e(r.expert), d_off(size_t(n_experts) + 1), d_rows(pairs), d_where(pairs);
    d_off.poison();
    d_rows.poison();
    d_where.poison();
    ASSERT_TRUE(cuda::moe_group({d_e.get(), int(pairs), n_experts, d_off.get(), d_rows.get(), d_where.get()}, nullptr).ok());
    const auto off = d_off.download(), rows = d_rows.download(), where = d_where.download();
    EXPECT_EQ(off, g.offset);
    for (size_t i = 0; i < pairs; ++i) {
      ASSERT_EQ(rows[i], g.token[i] * k + g.slot[i]) << i;  // pair order within each expert
      ASSERT_EQ(where[size_t(rows[i])], int32_t(i));
    }
  }
}

// E experts of one projection in the moe_gemv layout: rows padded to 16 bytes (padding
// poisoned with 0xff), experts at a stride rounded to 256 bytes.
struct Experts {
  Type type;
  int64_t n_out, n_in, stride, expert_bytes;
  int n_experts;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized [E][n_out][n_in]
};

Experts make_experts(std::mt19937& rng, Type type, int n_experts, int64_t n_out, int64_t n_in) {
  Experts x{type, n_out, n_in, cuda::moe_gemv_row_stride(type, n_in), 0, n_experts, {}, {}};
  x.expert_bytes = (x.stride * n_out + 255) / 256 * 256;
  x.bytes.assign(size_t(x.expert_bytes) * size_t(n_experts), 0xff);
  x.values.resize(size_t(n_experts) * size_t(n_out * n_in));
  const float sigma = 1.0f / std::sqrt(float(n_in));
  for (int e = 0; e < n_experts; ++e)
    for (int64_t r = 0; r < n_out; ++r) {
      const std::vector<float> src = cuda_test::random_normal(rng, size_t(n_in), sigma);
      uint8_t* row = &x.bytes[size_t(e * x.expert_bytes + r * x.stride)];
      quant::quantize_row(type, src.data(), row, n_in);
      quant::dequantize_row(type, row, &x.values[size_t((e * n_out + r) * n_in)], n_in);
    }
  return x;
}

// x rounded like quantize_q8 (int8 per 32, d = max|x| / 127), or as is for float weights.
std::vector<float> as_read(Type t, const std::vector<float>& x) {
  if (!cuda::gemv_fast_uses_q8(t)) return x;
  std::vector<float> y(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    const float d = amax / 127.0f;
    for (int i = 0; i < 32; ++i) y[32 * b + i] = d > 0 ? float(std::nearbyint(x[32 * b + i] / d)) * d : 0.0f;
  }
  return y;
}

double dot(const float* w, const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(w[i]) * double(x[i]);
  return s;
}

// One case: n tokens × k slots; gated (gate + up experts, the shared token row) or plain
// (each pair its own row).
void check_gemv(std::mt19937& rng, Type type, int n_experts, int64_t n_out, int64_t n_in, int n, int k, bool gated) {
  SCOPED_TRACE(std::string(quant::type_name(type)) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
               (gated ? " gated" : "") + " n " + std::to_string(n));
  const Experts g = make_experts(rng, type, n_experts, n_out, n_in);
  const Experts u = make_experts(rng, type, n_experts, n_out, n_in);
  const int pairs = n * k, x_div = gated ? k : 1, x_rows = pairs / x_div;
  std::vector<int32_t> ids(static_cast<size_t>(pairs));
  std::uniform_int_distribution<int32_t> pick(0, n_experts - 1);
  for (auto& e : ids) e = pick(rng);
  ids[0] = n_experts - 1;  // the last expert's region too
  const std::vector<float> x = cuda_test::random_normal(rng, size_t(x_rows) * size_t(n_in));
  std::vector<int8_t> xq(x.size());
  std::vector<float> xd(x.size() / 32 + 1);
  DeviceArray<float> d_x(x), d_y(size_t(pairs) * size_t(n_out)), d_xd(xd.size());
  DeviceArray<int8_t> d_xq(xq.size());
  DeviceArray<uint8_t> d_g(g.bytes), d_u(u.bytes);
  DeviceArray<int32_t> d_ids(ids);
  d_y.poison();
  cuda::MoeGemvParams p;
  p.w_type = type;
  p.w = d_g.get();
  p.w_up = gated ? d_u.get() : nullptr;
  p.n_in = n_in;
  p.n_out = n_out;
  p.row_bytes = g.stride;
  p.expert_bytes = g.expert_bytes;
  p.n_experts = n_experts;
  p.gated = gated;
  p.experts = d_ids.get();
  p.n_pairs = pairs;
  p.x_div = x_div;
  p.y = d_y.get();
  if (cuda::gemv_fast_uses_q8(type)) {
    ASSERT_TRUE(cuda::quantize_q8({d_x.get(), n_in, x_rows, d_xq.get(), d_xd.get()}, nullptr).ok());
    p.xq = d_xq.get();
    p.xd = d_xd.get();
  } else {
    p.x = d_x.get();
  }
  const Status st = cuda::moe_gemv(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  const std::vector<float> y = d_y.download();
  const std::vector<float> xr = as_read(type, x);
  std::vector<float> ref(y.size());
  for (int i = 0; i < pairs; ++i) {
    const float* xi = &xr[size_t(i / x_div) * size_t(n_in)];
    for (int64_t r = 0; r < n_out; ++r) {
      const size_t at = size_t((ids[size_t(i)] * n_out + r) * n_in);
      double v = dot(&g.values[at], xi, n_in);
      if (gated) v = v / (1.0 + std::exp(-v)) * dot(&u.values[at], xi, n_in);
      ref[size_t(i) * size_t(n_out) + size_t(r)] = float(v);
    }
  }
  EXPECT_LT(normalised_error(y, ref), 2e-5);
}

TEST(CudaMoe, GemvMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // Qwen3-30B-A3B's expert rows (768: Q6_K rows of 630 bytes, padded), odd row counts.
  for (Type t : {Type::Q8_0, Type::Q4_K, Type::Q6_K, Type::F16, Type::BF16}) {
    const int64_t n_in = t == Type::Q8_0 ? 800 : t == Type::F16 || t == Type::BF16 ? 776 : 768;
    check_gemv(rng, t, 6, 37, n_in, 3, 2, true);
    check_gemv(rng, t, 6, 37, n_in, 3, 2, false);
    check_gemv(rng, t, 5, 301, 1280, 1, 8, true);  // decode: one token, top-8
    check_gemv(rng, t, 9, 258, 2304, 8, 3, false);
  }
}

TEST(CudaMoe, GemvRejectsBadParams) {
  EMBER_REQUIRE_CUDA_DEVICE();
  DeviceArray<uint8_t> w(4096);
  DeviceArray<float> x(1024), y(1024);
  DeviceArray<int32_t> ids(4);
  cuda::MoeGemvParams p;
  p.w_type = Type::F16;
  p.w = w.get();
  p.n_in = 64;
  p.n_out = 4;
  p.row_bytes = 128;
  p.expert_bytes = 512;
  p.n_experts = 2;
  p.experts = ids.get();
  p.n_pairs = 2;
  p.x = x.get();
  p.y = y.get();
  EXPECT_TRUE(cuda::moe_gemv(p, nullptr).ok());
  p.row_bytes = 130;  // not the padded stride
  EXPECT_FALSE(cuda::moe_gemv(p, nullptr).ok());
  p.row_bytes = 128;
  p.expert_bytes = 256;  // smaller than one expert
  EXPECT_FALSE(cuda::moe_gemv(p, nullptr).ok());
  p.expert_bytes = 512;
  p.w_type = Type::Q4_0;  // no expert kernel
  EXPECT_EQ(cuda::moe_gemv(p, nullptr).kind(), ErrorKind::unsupported);
  p.w_type = Type::Q8_0;  // block formats need the int8 activations
  p.n_in = 64;
  p.row_bytes = cuda::moe_gemv_row_stride(Type::Q8_0, 64);
  EXPECT_FALSE(cuda::moe_gemv(p, nullptr).ok());
  cuda::MoeRouteParams r;
  r.n_experts = 2000;
  r.k = 2;
  EXPECT_FALSE(cuda::moe_route(r, nullptr).ok());
}

TEST(CudaMoe, CombineMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n = 19, k = 3, d = 100, pairs = n * k;
  const std::vector<float> y = cuda_test::random_normal(rng, size_t(pairs) * d), w = cuda_test::random_normal(rng, size_t(pairs));
  const std::vector<float> sh = cuda_test::random_normal(rng, size_t(n) * d), sg = cuda_test::random_normal(rng, size_t(n));
  std::vector<int32_t> where(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs; ++i) where[size_t(i)] = (i * 7) % pairs;  // a permutation (gcd(7, 57) = 1)
  DeviceArray<float> d_y(y), d_w(w), d_sh(sh), d_sg(sg), d_out(size_t(n) * d);
  DeviceArray<int32_t> d_where(where);
  for (int variant = 0; variant < 3; ++variant) {  // grouped rows + gated shared; direct rows; shared without gate
    d_out.poison();
    cuda::MoeCombineParams p;
    p.y = d_y.get();
    p.where = variant == 0 ? d_where.get() : nullptr;
    p.weights = d_w.get();
    p.shared = variant != 1 ? d_sh.get() : nullptr;
    p.shared_gate = variant == 0 ? d_sg.get() : nullptr;
    p.n_tokens = n;
    p.k = k;
    p.n = d;
    p.out = d_out.get();
    ASSERT_TRUE(cuda::moe_combine(p, nullptr).ok());
    const std::vector<float> out = d_out.download();
    std::vector<float> ref(out.size());
    for (int t = 0; t < n; ++t)
      for (int c = 0; c < d; ++c) {
        double s = 0;
        for (int j = 0; j < k; ++j) {
          const int pair = t * k + j, row = variant == 0 ? where[size_t(pair)] : pair;
          s += double(w[size_t(pair)]) * y[size_t(row) * d + size_t(c)];
        }
        if (variant != 1) s += (variant == 0 ? 1.0 / (1.0 + std::exp(-double(sg[size_t(t)]))) : 1.0) * sh[size_t(t) * d + size_t(c)];
        ref[size_t(t) * d + size_t(c)] = float(s);
      }
    EXPECT_LT(normalised_error(out, ref), 1e-6) << "variant " << variant;
  }
}

TEST(CudaMoe, GatherCopiesTokenRows) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  const int n = 11, k = 2, d = 64, pairs = n * k;
  const std::vector<float> x = cuda_test::random_normal(rng, size_t(n) * d);
  std::vector<int32_t> rows(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs; ++i) rows[size_t(i)] = (i * 5 + 3) % pairs;
  DeviceArray<float> d_x(x), d_y(size_t(pairs) * d);
  DeviceArray<int32_t> d_rows(rows);
  d_y.poison();
  ASSERT_TRUE(cuda::moe_gather({d_x.get(), d_rows.get(), pairs, k, d, d_y.get()}, nullptr).ok());
  const std::vector<float> y = d_y.download();
  for (int i = 0; i < pairs; ++i)
    for (int c = 0; c < d; ++c) ASSERT_EQ(y[size_t(i) * d + size_t(c)], x[size_t(rows[size_t(i)] / k) * d + size_t(c)]);
}

}  // namespace
}  // namespace ember
