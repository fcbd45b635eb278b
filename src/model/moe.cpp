#include "model/moe.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"
#include "model/linear.h"

namespace ember::model {

void route(const MoeSpec& spec, const float* logits, int n, const float* per_expert_scale, Routing& r) {
  const int n_exp = spec.n_experts, k = spec.n_experts_used;
  r.n_tokens = n;
  r.k = k;
  r.expert.resize(size_t(n) * size_t(k));
  r.weight.resize(r.expert.size());
  std::vector<float> probs(static_cast<size_t>(n_exp));
  std::vector<int32_t> order(static_cast<size_t>(n_exp));
  for (int t = 0; t < n; ++t) {
    const float* l = logits + size_t(t) * size_t(n_exp);
    if (spec.gating == MoeGating::softmax) {  // in double: the top-k must not depend on rounding
      const float mx = *std::max_element(l, l + n_exp);
      double sum = 0.0;
      for (int e = 0; e < n_exp; ++e) sum += std::exp(double(l[e]) - mx);
      for (int e = 0; e < n_exp; ++e) probs[size_t(e)] = float(std::exp(double(l[e]) - mx) / sum);
    } else {
      for (int e = 0; e < n_exp; ++e) probs[size_t(e)] = float(1.0 / (1.0 + std::exp(-double(l[e]))));
    }
    // Top-k by probability; ties go to the lower expert index (as torch.topk on CPU does).
    for (int e = 0; e < n_exp; ++e) order[size_t(e)] = e;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return probs[size_t(a)] > probs[size_t(b)] || (probs[size_t(a)] == probs[size_t(b)] && a < b);
    });
    int32_t* ex = &r.expert[size_t(t) * size_t(k)];
    float* w = &r.weight[size_t(t) * size_t(k)];
    double sum = 0.0;
    for (int j = 0; j < k; ++j) {
      ex[j] = order[size_t(j)];
      w[j] = probs[size_t(ex[j])];
      sum += w[j];
    }
    for (int j = 0; j < k; ++j) {
      if (spec.norm_topk) w[j] = float(w[j] / sum);
      if (per_expert_scale != nullptr) w[j] *= per_expert_scale[ex[j]];
      w[j] *= spec.weights_scale;
    }
  }
}

void group_by_expert(const Routing& r, int n_experts, ExpertGroups& g) {
  g.offset.assign(size_t(n_experts) + 1, 0);
  for (int32_t e : r.expert) g.offset[size_t(e) + 1]++;
  for (int e = 0; e < n_experts; ++e) g.offset[size_t(e) + 1] += g.offset[size_t(e)];
  g.token.resize(r.expert.size());
  g.slot.resize(r.expert.size());
  std::vector<int32_t> fill(g.offset.begin(), g.offset.end() - 1);
  for (int t = 0; t < r.n_tokens; ++t)
    for (int j = 0; j < r.k; ++j) {
      const int32_t e = r.expert[size_t(t) * size_t(r.k) + size_t(j)];
      const int32_t at = fill[size_t(e)]++;
      g.token[size_t(at)] = t;
      g.slot[size_t(at)] = j;
    }
}

// y: [m][n_embd] = down(act(gate(x)) * up(x)), x: [m][n_in].
void MoeFfn::gated_mlp(const Linear& gate, const Linear& up, const Linear& down, const float* x, int m, float* y) {
  const size_t hidden = size_t(m) * size_t(gate.n_out);
  gate_.resize(hidden);  // gate, up: [m][n_ff]
  up_.resize(hidden);
  linear_forward(gate, x, m, gate_.data(), pool_);
  linear_forward(up, x, m, up_.data(), pool_);
  if (spec_.act == Activation::gelu_tanh) cpu::gelu_tanh_mul(gate_.data(), up_.data(), gate_.data(), int64_t(hidden));
  else cpu::silu_mul(gate_.data(), up_.data(), gate_.data(), int64_t(hidden));
  linear_forward(down, gate_.data(), m, y, pool_);
}

// logits_: [n][n_experts] from the FFN input, or (Gemma 4) from RMSNorm(resid) ⊙ scale / sqrt(d).
void MoeFfn::router_logits(const MoeWeights& w, const float* x, const float* resid, int n) {
  const int d = spec_.n_embd;
  logits_.resize(size_t(n) * size_t(spec_.moe.n_experts));
  if (spec_.moe.router_input_norm) {
    rin_.resize(size_t(n) * size_t(d));
    const float root = 1.0f / std::sqrt(float(d));
    for (int t = 0; t < n; ++t) {
      float* r = &rin_[size_t(t) * size_t(d)];
      cpu::rms_norm(resid + size_t(t) * size_t(d), nullptr, r, d, spec_.norm_eps);
      for (int i = 0; i < d; ++i) r[i] *= w.router_scale[size_t(i)] * root;
    }
    x = rin_.data();
  }
  linear_forward(w.router, x, n, logits_.data(), pool_);
}

// out[token] += weight · expert_e(x[token]) for every token routed to expert e.
void MoeFfn::run_expert(const MoeWeights& w, int e, float* out) {
  const int d = spec_.n_embd;
  const int32_t begin = groups_.offset[size_t(e)], m = groups_.offset[size_t(e) + 1] - begin;
  if (m == 0) return;
  xe_.resize(size_t(m) * size_t(d));  // xe: [m][n_embd], the expert's tokens gathered
  for (int i = 0; i < m; ++i)
    std::copy_n(x_ + size_t(groups_.token[size_t(begin + i)]) * size_t(d), d, &xe_[size_t(i) * size_t(d)]);
  ye_.resize(xe_.size());  // ye: [m][n_embd]
  gated_mlp(w.gate[size_t(e)], w.up[size_t(e)], w.down[size_t(e)], xe_.data(), m, ye_.data());
  for (int i = 0; i < m; ++i) {
    const int32_t t = groups_.token[size_t(begin + i)], j = groups_.slot[size_t(begin + i)];
    const float wt = routing_.weight[size_t(t) * size_t(routing_.k) + size_t(j)];
    float* o = out + size_t(t) * size_t(d);
    const float* y = &ye_[size_t(i) * size_t(d)];
    for (int c = 0; c < d; ++c) o[c] += wt * y[c];
  }
}

// out += shared expert(x) (× sigmoid(x · gate_inp) when gated), over all n tokens.
void MoeFfn::shared_expert(const MoeWeights& w, const float* x, int n, float* out) {
  const int d = spec_.n_embd;
  ye_.resize(size_t(n) * size_t(d));
  gated_mlp(w.shexp_gate, w.shexp_up, w.shexp_down, x, n, ye_.data());
  std::vector<float> g(size_t(n), 1.0f);
  if (w.shexp_gate_inp.present()) {
    linear_forward(w.shexp_gate_inp, x, n, g.data(), pool_);
    for (float& v : g) v = float(1.0 / (1.0 + std::exp(-double(v))));
  }
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < d; ++c) out[size_t(t) * size_t(d) + size_t(c)] += g[size_t(t)] * ye_[size_t(t) * size_t(d) + size_t(c)];
}

void MoeFfn::forward(const MoeWeights& w, const float* x, const float* resid, int n, float* out) {
  const MoeSpec& ms = spec_.moe;
  router_logits(w, x, resid, n);
  route(ms, logits_.data(), n, w.per_expert_scale.empty() ? nullptr : w.per_expert_scale.data(), routing_);
  group_by_expert(routing_, ms.n_experts, groups_);
  std::fill_n(out, size_t(n) * size_t(spec_.n_embd), 0.0f);
  x_ = x;
  // Experts run one after another, each matmul over all of its tokens (threads split its
  // rows); an expert-parallel backend would hand each expert's group to another device.
  for (int e = 0; e < ms.n_experts; ++e) run_expert(w, e, out);
  if (w.shexp_up.present()) shared_expert(w, x, n, out);
}

void MoeFfn::add_parallel(const MoeWeights& w, const float* resid, int n, float* out) {
  const int d = spec_.n_embd;
  xin_.resize(size_t(n) * size_t(d));  // xin, moe_out: [n][n_embd]
  moe_out_.resize(xin_.size());
  for (int t = 0; t < n; ++t) {
    const size_t row = size_t(t) * size_t(d);
    cpu::rms_norm(out + row, w.dense_post_norm.data(), out + row, d, spec_.norm_eps);
    cpu::rms_norm(resid + row, w.pre_norm.data(), &xin_[row], d, spec_.norm_eps);
  }
  forward(w, xin_.data(), resid, n, moe_out_.data());
  for (int t = 0; t < n; ++t) {
    const size_t row = size_t(t) * size_t(d);
    cpu::rms_norm(&moe_out_[row], w.post_norm.data(), &moe_out_[row], d, spec_.norm_eps);
    for (int c = 0; c < d; ++c) out[row + size_t(c)] += moe_out_[row + size_t(c)];
  }
}

}  // namespace ember::model
