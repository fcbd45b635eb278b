// cuda::paged_attention against cpu::paged_attention (awkward head dims, GQA groups,
// sliding windows, soft-cap, chunks that cross splits, shuffled block tables, poisoned
// outputs), the batched-equals-alone property (bit for bit), and cuda::paged_kv_store.
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda_test_util.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;

constexpr int kBlock = 16;
constexpr int kCtx = 2048;

struct Case {
  int n_heads, n_kv_heads, head_dim, window;
  float softcap;
};

struct Chunk {
  int pos, n;  // tokens at positions [pos, pos + n) of one sequence
};

// A pool of random f16 keys/values and one block table per chunk's sequence.
struct Fixture {
  Case c;
  std::vector<Chunk> chunks;
  int n_blocks = 0, n_tokens = 0;
  std::vector<std::vector<int32_t>> tables;
  std::vector<__half> k, v;  // [n_blocks * kBlock][kv_w]
  std::vector<float> q;      // [n_tokens][n_heads * head_dim]

  Fixture(const Case& cs, std::vector<Chunk> ch, std::mt19937& rng) : c(cs), chunks(std::move(ch)) {
    for (const Chunk& x : chunks) {
      tables.emplace_back(size_t((x.pos + x.n + kBlock - 1) / kBlock));
      n_blocks += int(tables.back().size());
      n_tokens += x.n;
    }
    n_blocks += 3;  // blocks nobody uses
    std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    size_t next = 0;
    for (auto& t : tables)
      for (auto& id : t) id = ids[next++];
    const size_t kv_n = size_t(n_blocks) * kBlock * size_t(c.n_kv_heads * c.head_dim);
    for (const float x : cuda_test::random_normal(rng, kv_n)) k.push_back(__float2half_rn(x));
    for (const float x : cuda_test::random_normal(rng, kv_n)) v.push_back(__float2half_rn(x));
    q = cuda_test::random_normal(rng, size_t(n_tokens) * size_t(c.n_heads * c.head_dim));
  }
};

// The batch of `chunks[first, first + count)`, or of one token of one chunk (token >= 0).
struct Batch {
  std::vector<int32_t> positions, seq_of, table_start, block_tables;
  int q_row0 = 0;  // the batch's first row in Fixture::q
};

Batch make_batch(const Fixture& f, size_t first, size_t count, int token = -1) {
  Batch b;
  for (size_t i = 0; i < first; ++i) b.q_row0 += f.chunks[i].n;
  for (size_t i = first; i < first + count; ++i) {
    const int seq = int(b.table_start.size());
    b.table_start.push_back(int32_t(b.block_tables.size()));
    b.block_tables.insert(b.block_tables.end(), f.tables[i].begin(), f.tables[i].end());
    for (int t = 0; t < f.chunks[i].n; ++t) {
      if (token >= 0 && t != token) continue;
      b.positions.push_back(f.chunks[i].pos + t);
      b.seq_of.push_back(seq);
    }
  }
  if (token >= 0) b.q_row0 += token;
  return b;
}

std::vector<float> run_gpu(const Fixture& f, const Batch& b, const DeviceArray<__half>& dk,
                           const DeviceArray<__half>& dv) {
  const Case& c = f.c;
  const int n = int(b.positions.size()), q_w = c.n_heads * c.head_dim;
  std::vector<cuda::PagedWork> work;
  cuda::plan_paged_work(b.positions.data(), b.seq_of.data(), n,
                        cuda::paged_tokens_per_tile(c.n_heads / c.n_kv_heads), work);
  const std::vector<float> q(f.q.begin() + long(b.q_row0) * q_w, f.q.begin() + long(b.q_row0 + n) * q_w);
  DeviceArray<float> dq(q), out(size_t(n) * size_t(q_w));
  DeviceArray<int32_t> pos(b.positions), seq(b.seq_of), start(b.table_start), tables(b.block_tables);
  DeviceArray<cuda::PagedWork> dwork(work.size());
  EXPECT_EQ(cudaMemcpy(dwork.get(), work.data(), work.size() * sizeof(work[0]), cudaMemcpyHostToDevice), cudaSuccess);
  const int splits = cuda::paged_max_splits(kCtx);
  DeviceArray<float> partials(cuda::paged_attention_workspace(n, c.n_heads, c.head_dim, splits));
  partials.poison();
  out.poison();
  cuda::PagedAttentionParams p;
  p.n_tokens = n;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(float(c.head_dim));
  p.softcap = c.softcap;
  p.block_size = kBlock;
  p.q = dq.get();
  p.positions = pos.get();
  p.seq_of = seq.get();
  p.table_start = start.get();
  p.block_tables = tables.get();
  p.k = dk.get();
  p.v = dv.get();
  p.out = out.get();
  p.work = dwork.get();
  p.n_work = int(work.size());
  p.partials = partials.get();
  p.max_splits = splits;
  const Status st = cuda::paged_attention(p, nullptr);
  EXPECT_TRUE(st.ok()) << st.message();
  return out.download();
}

std::vector<float> run_cpu(const Fixture& f, const Batch& b) {
  const Case& c = f.c;
  const int n = int(b.positions.size()), q_w = c.n_heads * c.head_dim;
  std::vector<float> k(f.k.size()), v(f.v.size()), out(size_t(n) * size_t(q_w));
  for (size_t i = 0; i < k.size(); ++i) k[i] = __half2float(f.k[i]), v[i] = __half2float(f.v[i]);
  cpu::PagedAttentionParams p;
  p.n_tokens = n;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(float(c.head_dim));
  p.softcap = c.softcap;
  p.block_size = kBlock;
  p.q = f.q.data() + size_t(b.q_row0) * size_t(q_w);
  p.positions = b.positions.data();
  p.seq_of = b.seq_of.data();
  p.table_start = b.table_start.data();
  p.block_tables = b.block_tables.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  cpu::paged_attention(p, ThreadPool::global());
  return out;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {9, 3, 64, 0, 0.0f},    {4, 1, 256, 0, 0.0f},  {4, 1, 256, 100, 0.0f}, {32, 8, 128, 0, 0.0f},
      {6, 2, 80, 0, 30.0f},   {2, 2, 18, 0, 0.0f},   {8, 1, 128, 7, 50.0f},  {32, 1, 64, 0, 0.0f},
  };
  return c;
}

// decode tokens, prefill chunks, a chunk across the 512-key split boundary, position 0
const std::vector<Chunk> kChunks = {{700, 1}, {20, 37}, {500, 31}, {0, 1}, {1030, 3}, {0, 17}, {1535, 2}};

TEST(CudaPagedAttention, MatchesCpuReference) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Case& c : cases()) {
    SCOPED_TRACE(testing::Message() << c.n_heads << "/" << c.n_kv_heads << " heads, hd " << c.head_dim
                                    << ", window " << c.window << ", softcap " << c.softcap);
    const Fixture f(c, kChunks, rng);
    DeviceArray<__half> dk(f.k), dv(f.v);
    const Batch all = make_batch(f, 0, f.chunks.size());
    const double err = cuda_test::normalised_error(run_gpu(f, all, dk, dv), run_cpu(f, all));
    EXPECT_LT(err, 1e-5);
  }
}

TEST(CudaPagedAttention, BatchedEqualsAloneBitForBit) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Case& c : {cases()[0], cases()[2], cases()[3]}) {
    const Fixture f(c, kChunks, rng);
    DeviceArray<__half> dk(f.k), dv(f.v);
    const std::vector<float> batched = run_gpu(f, make_batch(f, 0, f.chunks.size()), dk, dv);
    const size_t q_w = size_t(c.n_heads * c.head_dim);
    size_t row = 0;
    for (size_t i = 0; i < f.chunks.size(); ++i) {
      const std::vector<float> alone = run_gpu(f, make_batch(f, i, 1), dk, dv);
      EXPECT_EQ(std::memcmp(alone.data(), batched.data() + row * q_w, alone.size() * sizeof(float)), 0)
          << "chunk " << i << " differs alone";
      for (int t = 0; t < f.chunks[i].n; t += 5) {  // single tokens, as decode steps would run them
        const std::vector<float> one = run_gpu(f, make_batch(f, i, 1, t), dk, dv);
        EXPECT_EQ(std::memcmp(one.data(), batched.data() + (row + size_t(t)) * q_w, q_w * sizeof(float)), 0)
            << "chunk " << i << " token " << t << " differs alone";
      }
      row += size_t(f.chunks[i].n);
    }
  }
}

TEST(CudaPagedAttention, KvStoreWritesSlots) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  const int n = 19, kv_w = 6 * 18, n_slots = 64;
  const auto k = cuda_test::random_normal(rng, size_t(n * kv_w)), v = cuda_test::random_normal(rng, size_t(n * kv_w));
  std::vector<int64_t> slots(n_slots);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(n);
  DeviceArray<float> dk(k), dv(v);
  DeviceArray<int64_t> ds(slots);
  DeviceArray<__half> kp(size_t(n_slots * kv_w)), vp(size_t(n_slots * kv_w));
  ASSERT_EQ(cudaMemset(kp.get(), 0, kp.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(vp.get(), 0, vp.size() * 2), cudaSuccess);
  ASSERT_TRUE(cuda::paged_kv_store({dk.get(), dv.get(), ds.get(), kp.get(), vp.get(), n, kv_w}, nullptr).ok());
  const auto gk = kp.download(), gv = vp.download();
  std::vector<int> owner(n_slots, -1);
  for (int t = 0; t < n; ++t) owner[size_t(slots[size_t(t)])] = t;
  for (int s = 0; s < n_slots; ++s)
    for (int i = 0; i < kv_w; ++i) {
      const size_t at = size_t(s * kv_w + i);
      const float want_k = owner[size_t(s)] < 0 ? 0.0f : __half2float(__float2half_rn(k[size_t(owner[size_t(s)] * kv_w + i)]));
      const float want_v = owner[size_t(s)] < 0 ? 0.0f : __half2float(__float2half_rn(v[size_t(owner[size_t(s)] * kv_w + i)]));
      ASSERT_EQ(__half2float(gk[at]), want_k) << "slot " << s;
      ASSERT_EQ(__half2float(gv[at]), want_v) << "slot " << s;
    }
}

TEST(CudaPagedAttention, RejectsBadShapes) {
  EMBER_REQUIRE_CUDA_DEVICE();
  cuda::PagedAttentionParams p;
  p.n_tokens = 1;
  p.n_heads = 4;
  p.n_kv_heads = 3;  // not a divisor
  p.head_dim = 64;
  EXPECT_FALSE(cuda::paged_attention(p, nullptr).ok());
  p.n_kv_heads = 1;
  p.head_dim = 512;
  EXPECT_FALSE(cuda::paged_attention(p, nullptr).ok());
  p.head_dim = 64;
  p.block_size = 16;  // no work, no splits
  EXPECT_FALSE(cuda::paged_attention(p, nullptr).ok());
  EXPECT_FALSE(cuda::paged_kv_store({nullptr, nullptr, nullptr, nullptr, nullptr, 1, 7}, nullptr).ok());
}

}  // namespace
}  // namespace ember
