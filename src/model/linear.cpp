#include "model/linear.h"

#include <vector>

#include "kernels/cpu/matmul.h"

namespace ember::model {

// y: [n][n_out] = (x' · Wᵀ) · scale + (x' · Aᵀ) · Bᵀ + bias, x' = x ⊙ pre_quant_scale.
void linear_forward(const Linear& w, const float* x, int n, float* y, ThreadPool& pool) {
  thread_local std::vector<float> scaled, t, low;  // x' [n][n_in], x'·Aᵀ [n][rank], [n][n_out]
  const size_t n_in = size_t(w.n_in), n_out = size_t(w.n_out);
  if (!w.pre_quant_scale.empty()) {
    scaled.resize(size_t(n) * n_in);
    for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = x[i] * w.pre_quant_scale[i % n_in];
    x = scaled.data();
  }
  cpu::MatmulParams p{w.type, w.data, w.n_out, w.n_in, w.row_bytes, x, n, y};
  cpu::matmul(p, pool);
  if (w.scale != 1.0f)
    for (size_t i = 0; i < size_t(n) * n_out; ++i) y[i] *= w.scale;
  if (w.has_lowrank()) {
    const auto& ta = quant::traits(w.lowrank_a.type);
    const auto& tb = quant::traits(w.lowrank_b.type);
    t.resize(size_t(n) * size_t(w.rank));
    low.resize(size_t(n) * n_out);
    cpu::matmul({w.lowrank_a.type, w.lowrank_a.data, w.rank, w.n_in, w.n_in * ta.block_bytes, x, n, t.data()}, pool);
    cpu::matmul({w.lowrank_b.type, w.lowrank_b.data, w.n_out, w.rank, w.rank * tb.block_bytes, t.data(), n,
                 low.data()}, pool);
    for (size_t i = 0; i < low.size(); ++i) y[i] += low[i];
  }
  if (!w.bias.empty())
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < w.n_out; ++i) y[t * w.n_out + i] += w.bias[size_t(i)];
}

}  // namespace ember::model
