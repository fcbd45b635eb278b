#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ember::cpu {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * x[i];
  const float inv = float(1.0 / std::sqrt(sum / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

void rope(float* x, int n_heads, int64_t pos, const RopeParams& p) {
  const int half = p.n_rot / 2;
  const double position = double(pos) * p.freq_scale;
  const int n_pairs = p.n_pairs > 0 ? std::min(p.n_pairs, half) : half;
  for (int i = 0; i < n_pairs; ++i) {
    const double theta = position * std::pow(double(p.freq_base), -2.0 * i / p.n_rot);
    const float c = float(std::cos(theta)), s = float(std::sin(theta));
    for (int h = 0; h < n_heads; ++h) {
      float* head = x + int64_t(h) * p.head_dim;
      const int a = p.style == RopeStyle::neox ? i : 2 * i;
      const int b = p.style == RopeStyle::neox ? i + half : 2 * i + 1;
      const float x0 = head[a], x1 = head[b];
      head[a] = x0 * c - x1 * s;
      head[b] = x0 * s + x1 * c;
    }
  }
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

static void attend_one(const AttentionParams& p, int t, int h, std::vector<float>& scores) {
  const int d = p.head_dim;
  const int64_t kv_stride = int64_t(p.n_kv_heads) * d;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t q_pos = p.pos0 + t;
  const int64_t first = p.window > 0 ? std::max<int64_t>(0, q_pos - p.window + 1) : 0;
  const int64_t n_keys = q_pos - first + 1;
  const float* q = p.q + int64_t(t) * p.n_heads * d + int64_t(h) * d;
  scores.resize(size_t(n_keys));
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* k = p.k + (first + j) * kv_stride + int64_t(kvh) * d;
    float dot = 0.0f;
    for (int i = 0; i < d; ++i) dot += q[i] * k[i];
    float s = dot * p.scale;
    if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
    scores[size_t(j)] = s;
  }
  softmax(scores.data(), n_keys);
  float* out = p.out + int64_t(t) * p.n_heads * d + int64_t(h) * d;
  std::fill(out, out + d, 0.0f);
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* v = p.v + (first + j) * kv_stride + int64_t(kvh) * d;
    const float w = scores[size_t(j)];
    for (int i = 0; i < d; ++i) out[i] += w * v[i];
  }
}

void attention(const AttentionParams& p, ThreadPool& pool) {
  const int64_t n_jobs = int64_t(p.n_tokens) * p.n_heads;
  pool.parallel_for(n_jobs, [&](int64_t begin, int64_t end, int) {
    std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job) attend_one(p, int(job / p.n_heads), int(job % p.n_heads), scores);
  });
}

}  // namespace ember::cpu
