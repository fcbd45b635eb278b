#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ops.h"

namespace ember::cpu {

namespace {

// The cache row of key/value j of the token's sequence: [n_kv_heads * head_dim].
struct RowFinder {
  const PagedAttentionParams& p;
  const int32_t* table;
  int64_t row_width;
  int64_t row(int64_t j) const {
    return (int64_t(table[j / p.block_size]) * p.block_size + j % p.block_size) * row_width;
  }
};

void attend_one_paged(const PagedAttentionParams& p, int t, int h, std::vector<float>& scores) {
  const int d = p.head_dim;
  const RowFinder rows{p, p.block_tables + p.table_start[p.seq_of[t]], int64_t(p.n_kv_heads) * d};
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t q_pos = p.positions[t];
  const int64_t first = p.window > 0 ? std::max<int64_t>(0, q_pos - p.window + 1) : 0;
  const int64_t n_keys = q_pos - first + 1;
  const float* q = p.q + int64_t(t) * p.n_heads * d + int64_t(h) * d;
  scores.resize(size_t(n_keys));
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* k = p.k + rows.row(first + j) + int64_t(kvh) * d;
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
    const float* v = p.v + rows.row(first + j) + int64_t(kvh) * d;
    const float w = scores[size_t(j)];
    for (int i = 0; i < d; ++i) out[i] += w * v[i];
  }
}

}  // namespace

void paged_attention(const PagedAttentionParams& p, ThreadPool& pool) {
  const int64_t n_jobs = int64_t(p.n_tokens) * p.n_heads;
  pool.parallel_for(n_jobs, [&](int64_t begin, int64_t end, int) {
    std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job)
      attend_one_paged(p, int(job / p.n_heads), int(job % p.n_heads), scores);
  });
}

}  // namespace ember::cpu
