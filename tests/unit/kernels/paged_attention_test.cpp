// Paged attention over a block pool equals the contiguous cpu::attention, bit for bit,
// on awkward shapes: page tails, 17 sequences at once, GQA, sliding windows, softcap,
// and blocks of a sequence scattered in shuffled order through the pool.
#include "kernels/cpu/paged_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/cpu/ops.h"

namespace ember::cpu {
namespace {

struct Shape {
  int n_heads, n_kv_heads, head_dim, window, block_size;
  float softcap;
};

struct Seq {
  int n_past, n_new;               // cached tokens, then this step's query tokens
  std::vector<float> k, v, q;      // contiguous [n_past + n_new][kv_w], [n_new][q_w]
  std::vector<int32_t> blocks;     // its block table
};

void check_shape(const Shape& s, int n_seqs, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int kv_w = s.n_kv_heads * s.head_dim, q_w = s.n_heads * s.head_dim;
  std::vector<Seq> seqs(static_cast<size_t>(n_seqs));
  int n_blocks = 0;
  for (auto& sq : seqs) {
    sq.n_past = int(rng() % 70);
    sq.n_new = 1 + int(rng() % 19);
    const int n = sq.n_past + sq.n_new;
    for (int i = 0; i < n * kv_w; ++i) sq.k.push_back(dist(rng)), sq.v.push_back(dist(rng));
    for (int i = 0; i < sq.n_new * q_w; ++i) sq.q.push_back(dist(rng));
    const int nb = (n + s.block_size - 1) / s.block_size;
    for (int b = 0; b < nb; ++b) sq.blocks.push_back(n_blocks++);
  }
  // Scatter the blocks through a pool with spare blocks, in shuffled order.
  const int pool_blocks = n_blocks + 5;
  std::vector<int32_t> perm(static_cast<size_t>(pool_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<float> k_pages(size_t(pool_blocks) * s.block_size * kv_w, NAN), v_pages(k_pages.size(), NAN);
  PagedAttentionParams p;
  std::vector<float> q;
  std::vector<int32_t> positions, seq_of, table_start, tables;
  for (int si = 0; si < n_seqs; ++si) {
    auto& sq = seqs[size_t(si)];
    for (auto& b : sq.blocks) b = perm[size_t(b)];
    table_start.push_back(int32_t(tables.size()));
    tables.insert(tables.end(), sq.blocks.begin(), sq.blocks.end());
    for (int j = 0; j < sq.n_past + sq.n_new; ++j) {
      const size_t row = (size_t(sq.blocks[size_t(j / s.block_size)]) * s.block_size + j % s.block_size) * kv_w;
      std::copy_n(&sq.k[size_t(j) * kv_w], kv_w, &k_pages[row]);
      std::copy_n(&sq.v[size_t(j) * kv_w], kv_w, &v_pages[row]);
    }
    for (int t = 0; t < sq.n_new; ++t) positions.push_back(sq.n_past + t), seq_of.push_back(si);
    q.insert(q.end(), sq.q.begin(), sq.q.end());
  }
  const int n_tokens = int(positions.size());
  std::vector<float> out(size_t(n_tokens) * q_w, NAN);  // poisoned
  p.n_tokens = n_tokens;
  p.n_heads = s.n_heads;
  p.n_kv_heads = s.n_kv_heads;
  p.head_dim = s.head_dim;
  p.window = s.window;
  p.scale = 1.0f / std::sqrt(float(s.head_dim));
  p.softcap = s.softcap;
  p.block_size = s.block_size;
  p.q = q.data();
  p.positions = positions.data();
  p.seq_of = seq_of.data();
  p.table_start = table_start.data();
  p.block_tables = tables.data();
  p.k = k_pages.data();
  p.v = v_pages.data();
  p.out = out.data();
  ThreadPool pool(3);
  paged_attention(p, pool);

  size_t row0 = 0;
  for (auto& sq : seqs) {
    AttentionParams a;
    a.n_tokens = sq.n_new;
    a.pos0 = sq.n_past;
    a.n_heads = s.n_heads;
    a.n_kv_heads = s.n_kv_heads;
    a.head_dim = s.head_dim;
    a.window = s.window;
    a.scale = p.scale;
    a.softcap = s.softcap;
    a.q = sq.q.data();
    a.k = sq.k.data();
    a.v = sq.v.data();
    std::vector<float> ref(size_t(sq.n_new) * q_w, NAN);
    a.out = ref.data();
    attention(a, pool);
    for (size_t i = 0; i < ref.size(); ++i)
      ASSERT_EQ(out[row0 * q_w + i], ref[i]) << "n_past " << sq.n_past << " element " << i;
    row0 += size_t(sq.n_new);
  }
}

TEST(PagedAttention, EqualsContiguousAttention) {
  std::mt19937 rng(std::random_device{}());
  const Shape shapes[] = {
      {9, 3, 64, 0, 16, 0.0f},   // SmolLM2-like GQA
      {4, 1, 32, 7, 16, 0.0f},   // sliding window shorter than a block, MQA
      {8, 8, 16, 40, 5, 0.0f},   // odd block size, window across page tails
      {6, 2, 24, 0, 1, 30.0f},   // one token per block, softcap
      {2, 1, 8, 3, 64, 0.0f},    // one block holds everything
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE(testing::Message() << "heads " << s.n_heads << "/" << s.n_kv_heads << " block " << s.block_size);
    check_shape(s, 17, rng);
    check_shape(s, 1, rng);
  }
}

}  // namespace
}  // namespace ember::cpu
