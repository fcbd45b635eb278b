// CPU ops against independent formulations (complex rotation for rope, a naive
// masked-softmax loop in double for attention).
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "kernels/cpu/ops.h"

namespace ember::cpu {
namespace {

std::mt19937 make_rng() {
  const unsigned seed = std::random_device{}();
  ::testing::Test::RecordProperty("seed", int(seed));
  return std::mt19937(seed);
}

TEST(Ops, RmsNorm) {
  std::vector<float> x{1, 2, 3, 4}, w{1, 1, 2, 0.5f}, y(4);
  rms_norm(x.data(), w.data(), y.data(), 4, 0.0f);
  const float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  EXPECT_NEAR(y[0], 1 / rms, 1e-6);
  EXPECT_NEAR(y[2], 6 / rms, 1e-6);
  EXPECT_NEAR(y[3], 2 / rms, 1e-6);
}

TEST(Ops, RopeMatchesComplexRotation) {
  auto rng = make_rng();
  std::normal_distribution<float> dist;
  for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::neox}) {
    const int hd = 64, n_heads = 3;
    const int64_t pos = 1234;
    std::vector<float> x(size_t(hd) * n_heads);
    for (auto& v : x) v = dist(rng);
    std::vector<float> y = x;
    rope(y.data(), n_heads, pos, {hd, hd, 10000.0f, 0.5f, style});
    for (int h = 0; h < n_heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const int a = style == RopeStyle::neox ? i : 2 * i, b = style == RopeStyle::neox ? i + hd / 2 : 2 * i + 1;
        const double theta = pos * 0.5 / std::pow(10000.0, 2.0 * i / hd);
        const std::complex<double> z(x[size_t(h * hd + a)], x[size_t(h * hd + b)]);
        const auto r = z * std::polar(1.0, theta);
        EXPECT_NEAR(y[size_t(h * hd + a)], r.real(), 2e-4);
        EXPECT_NEAR(y[size_t(h * hd + b)], r.imag(), 2e-4);
      }
  }
}

TEST(Ops, Activations) {
  const float g[2] = {1.0f, -2.0f}, u[2] = {2.0f, 3.0f};
  float y[2];
  silu_mul(g, u, y, 2);
  EXPECT_NEAR(y[0], 2.0 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(y[1], 3.0 * -2.0 / (1 + std::exp(2.0)), 1e-6);
  gelu_tanh_mul(g, u, y, 2);
  EXPECT_NEAR(y[0], 2.0 * 0.841192, 1e-5);   // gelu_tanh(1)
  EXPECT_NEAR(y[1], 3.0 * -0.0454023, 1e-5); // gelu_tanh(-2)
}

// Naive attention in double for one batch, with causal + sliding-window masking.
std::vector<float> naive_attention(const AttentionParams& p) {
  const int d = p.head_dim, group = p.n_heads / p.n_kv_heads;
  std::vector<float> out(size_t(p.n_tokens) * p.n_heads * d, 0.0f);
  for (int t = 0; t < p.n_tokens; ++t)
    for (int h = 0; h < p.n_heads; ++h) {
      const int64_t qp = p.pos0 + t;
      std::vector<double> s(size_t(qp + 1), -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j <= qp; ++j) {
        if (p.window > 0 && qp - j >= p.window) continue;
        double dot = 0;
        for (int i = 0; i < d; ++i)
          dot += double(p.q[(t * p.n_heads + h) * d + i]) * p.k[(j * p.n_kv_heads + h / group) * d + i];
        s[size_t(j)] = dot * p.scale;
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      for (auto& v : s) sum += (v = std::exp(v - mx));
      for (int i = 0; i < d; ++i) {
        double acc = 0;
        for (int64_t j = 0; j <= qp; ++j) acc += s[size_t(j)] / sum * p.v[(j * p.n_kv_heads + h / group) * d + i];
        out[size_t((t * p.n_heads + h) * d + i)] = float(acc);
      }
    }
  return out;
}

TEST(Ops, AttentionMatchesNaiveWithWindowAndGqa) {
  auto rng = make_rng();
  std::normal_distribution<float> dist;
  ThreadPool pool(3);
  for (int window : {0, 5}) {
    AttentionParams p;
    p.n_tokens = 7;
    p.pos0 = 10;
    p.n_heads = 6;
    p.n_kv_heads = 2;
    p.head_dim = 16;
    p.window = window;
    p.scale = 0.25f;
    const int64_t n_keys = p.pos0 + p.n_tokens;
    std::vector<float> q(size_t(p.n_tokens) * p.n_heads * p.head_dim), k(size_t(n_keys) * p.n_kv_heads * p.head_dim),
        v(k.size()), out(q.size(), NAN);
    for (auto* buf : {&q, &k, &v})
      for (auto& x : *buf) x = dist(rng);
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.out = out.data();
    attention(p, pool);
    const auto ref = naive_attention(p);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-4) << "window " << window << " i " << i;
  }
}

}  // namespace
}  // namespace ember::cpu
