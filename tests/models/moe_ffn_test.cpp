// The MoE FFN (model/moe.h) on real expert shapes (n_embd 2816, expert width 704: K = 2816
// for gate/up, K = 704 for down) at M = 1 and M > 1, with experts as slices of one 3-D
// quantized buffer, against a double-precision reference on the dequantized weights with
// its own routing. Fresh random inputs each run; outputs poisoned before the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/thread_pool.h"
#include "model/moe.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using quant::Type;

// n_exp experts of [n_out][n_in] in one buffer, quantized row by row (a GGUF 3-D tensor).
struct ExpertStack {
  Type type;
  int64_t n_in, n_out, row_bytes;
  std::vector<uint8_t> data;
  std::vector<float> deq;  // [n_exp][n_out][n_in]

  ExpertStack(Type t, int n_exp, int64_t in, int64_t out, std::mt19937& rng) : type(t), n_in(in), n_out(out) {
    row_bytes = *quant::row_bytes(t, in);
    data.resize(size_t(row_bytes * out * n_exp));
    deq.resize(size_t(in * out * n_exp));
    std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(float(in)));
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t r = 0; r < out * n_exp; ++r) {
      for (auto& v : row) v = nd(rng);
      quant::quantize_row(t, row.data(), data.data() + r * row_bytes, in);
      quant::dequantize_row(t, data.data() + r * row_bytes, &deq[size_t(r * in)], in);
    }
  }
  model::Linear view(int e) const {  // expert e: rows [e * n_out, (e + 1) * n_out)
    model::Linear l;
    l.type = type;
    l.data = data.data() + size_t(e) * size_t(n_out * row_bytes);
    l.n_in = n_in;
    l.n_out = n_out;
    l.row_bytes = row_bytes;
    return l;
  }
};

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// out[t] = Σ_k w_k · down_e(silu(gate_e x) * up_e x), routing by softmax + top-k + renormalise.
std::vector<double> reference(const model::MoeSpec& ms, const std::vector<float>& router, const ExpertStack& gate,
                              const ExpertStack& up, const ExpertStack& down, const std::vector<float>& x, int m,
                              int d) {
  const int n_exp = ms.n_experts, ff = int(gate.n_out);
  std::vector<double> out(size_t(m) * size_t(d), 0.0);
  for (int t = 0; t < m; ++t) {
    const float* xt = &x[size_t(t) * size_t(d)];
    std::vector<double> p(static_cast<size_t>(n_exp));
    for (int e = 0; e < n_exp; ++e)
      p[size_t(e)] = std::inner_product(xt, xt + d, &router[size_t(e) * size_t(d)], 0.0);
    const double mx = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (auto& v : p) sum += (v = std::exp(v - mx));
    std::vector<int> idx(static_cast<size_t>(n_exp));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
    double wsum = 0;
    for (int j = 0; j < ms.n_experts_used; ++j) wsum += p[size_t(idx[size_t(j)])] / sum;
    for (int j = 0; j < ms.n_experts_used; ++j) {
      const int e = idx[size_t(j)];
      const double w = p[size_t(e)] / sum / wsum;
      std::vector<double> h(static_cast<size_t>(ff));
      for (int i = 0; i < ff; ++i) {
        const float* g = &gate.deq[(size_t(e) * size_t(ff) + size_t(i)) * size_t(d)];
        const float* u = &up.deq[(size_t(e) * size_t(ff) + size_t(i)) * size_t(d)];
        h[size_t(i)] = silu(std::inner_product(xt, xt + d, g, 0.0)) * std::inner_product(xt, xt + d, u, 0.0);
      }
      for (int c = 0; c < d; ++c) {
        const float* dn = &down.deq[(size_t(e) * size_t(d) + size_t(c)) * size_t(ff)];
        double acc = 0;
        for (int i = 0; i < ff; ++i) acc += h[size_t(i)] * dn[i];
        out[size_t(t) * size_t(d) + size_t(c)] += w * acc;
      }
    }
  }
  return out;
}

void check_shapes(Type gate_up_type, Type down_type, std::initializer_list<int> batch_sizes) {
  constexpr int kEmbd = 2816, kFf = 704, kExperts = 8;
  std::mt19937 rng(std::random_device{}());
  model::ModelSpec spec;
  spec.n_embd = kEmbd;
  spec.act = model::Activation::silu;
  spec.moe.n_experts = kExperts;
  spec.moe.n_experts_used = 2;
  spec.moe.n_ff_exp = kFf;
  ExpertStack gate(gate_up_type, kExperts, kEmbd, kFf, rng), up(gate_up_type, kExperts, kEmbd, kFf, rng);
  ExpertStack down(down_type, kExperts, kFf, kEmbd, rng);
  std::vector<float> router(size_t(kExperts) * kEmbd);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : router) v = nd(rng) * 0.05f;

  model::MoeWeights w;
  w.router.type = Type::F32;
  w.router.data = router.data();
  w.router.n_in = kEmbd;
  w.router.n_out = kExperts;
  w.router.row_bytes = int64_t(kEmbd) * 4;
  for (int e = 0; e < kExperts; ++e) {
    w.gate.push_back(gate.view(e));
    w.up.push_back(up.view(e));
    w.down.push_back(down.view(e));
  }
  model::MoeFfn ffn(spec, ThreadPool::global());
  for (const int m : batch_sizes) {
    std::vector<float> x(size_t(m) * kEmbd);
    for (auto& v : x) v = nd(rng);
    std::vector<float> out(x.size(), std::nanf(""));  // poisoned
    ffn.forward(w, x.data(), x.data(), m, out.data());
    const std::vector<double> ref = reference(spec.moe, router, gate, up, down, x, m, kEmbd);
    for (int t = 0; t < m; ++t) {
      double num = 0, den = 0;
      for (int c = 0; c < kEmbd; ++c) {
        const double r = ref[size_t(t) * kEmbd + size_t(c)], g = out[size_t(t) * kEmbd + size_t(c)];
        num += (g - r) * (g - r);
        den += r * r;
      }
      const double err = std::sqrt(num / den);
      EXPECT_LT(err, 2e-3) << quant::type_name(gate_up_type) << "/" << quant::type_name(down_type) << " M=" << m
                           << " token " << t;
    }
  }
}

TEST(MoeFfn, ExpertShapesQ4KQ8) { check_shapes(Type::Q4_K, Type::Q8_0, {1, 7}); }
TEST(MoeFfn, ExpertShapesQ6KQ8) { check_shapes(Type::Q6_K, Type::Q8_0, {17, 1}); }
TEST(MoeFfn, ExpertShapesF16) { check_shapes(Type::F16, Type::F16, {1, 4}); }
TEST(MoeFfn, ExpertShapesQ8) { check_shapes(Type::Q8_0, Type::Q8_0, {5}); }
TEST(MoeFfn, ExpertShapesQ4_0) { check_shapes(Type::Q4_0, Type::Q4_0, {3}); }

// Routing: gating, top-k with renormalisation, scales; grouping keeps every (token, slot).
TEST(MoeFfn, RouteAndGroup) {
  model::MoeSpec ms;
  ms.n_experts = 4;
  ms.n_experts_used = 2;
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f, -1.0f,   // token 0: experts 1, 2
                                     3.0f, -2.0f, 0.5f, 2.5f};  // token 1: experts 0, 3
  model::Routing r;
  model::route(ms, logits.data(), 2, nullptr, r);
  EXPECT_EQ(r.expert, (std::vector<int32_t>{1, 2, 0, 3}));
  EXPECT_NEAR(r.weight[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);  // renormalised pair: sigmoid(2 - 1)
  EXPECT_NEAR(r.weight[0] + r.weight[1], 1.0, 1e-6);
  ms.norm_topk = false;
  ms.weights_scale = 2.0f;
  const float per_expert[4] = {1.0f, 0.5f, 1.0f, 1.0f};
  model::route(ms, logits.data(), 2, per_expert, r);
  double z = 0;
  for (int e = 0; e < 4; ++e) z += std::exp(double(logits[size_t(e)]));
  EXPECT_NEAR(r.weight[0], std::exp(2.0) / z * 0.5 * 2.0, 1e-6);
  ms.gating = model::MoeGating::sigmoid;
  model::route(ms, logits.data(), 2, nullptr, r);
  EXPECT_NEAR(r.weight[2], 2.0 / (1.0 + std::exp(-3.0)), 1e-6);
  model::ExpertGroups g;
  model::group_by_expert(r, 4, g);
  EXPECT_EQ(g.offset, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(g.token, (std::vector<int32_t>{1, 0, 0, 1}));
  EXPECT_EQ(g.slot, (std::vector<int32_t>{0, 0, 1, 1}));
}

}  // namespace
}  // namespace ember
