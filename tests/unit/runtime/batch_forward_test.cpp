// CpuDecoder::forward_batch on real models: logits of several sequences at different
// positions, run together over a paged KV cache in two steps, equal the single-sequence
// forward's logits. Gemma 3 has sliding-window layers; one sequence goes past its window.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "kv/block_pool.h"
#include "kv/kv_storage.h"
#include "model/decoder.h"
#include "model/model.h"
#include "unit/formats/test_paths.h"

namespace ember {
namespace {

struct TestSeq {
  std::vector<int32_t> tokens;
  int n_past = 0;  // step 1 computes [0, n_past), step 2 the rest
  std::unique_ptr<kv::BlockTable> blocks;
};

// Reference: a fresh contiguous decoder per sequence, same two chunks.
std::vector<std::vector<float>> reference_logits(const model::Model& m, const TestSeq& s) {
  model::CpuDecoder dec(m.spec, m.weights, int(s.tokens.size()), ThreadPool::global());
  std::vector<std::vector<float>> out;
  std::vector<float> logits;
  const std::span<const int32_t> all(s.tokens);
  if (s.n_past > 0) {
    EXPECT_TRUE(dec.forward(all.first(size_t(s.n_past)), 0, false, logits).ok());
    out.push_back(logits);
  }
  EXPECT_TRUE(dec.forward(all.subspan(size_t(s.n_past)), s.n_past, false, logits).ok());
  out.push_back(logits);
  return out;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

void check_batched_equals_single(const char* file) {
  EMBER_MODEL_OR_SKIP(path, file);
  auto loaded = model::Model::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const model::Model& m = **loaded;
  std::mt19937 rng(std::random_device{}());
  // (n_past, n_new): a prefill from 0, decodes at several depths, a chunked prefill,
  // one past Gemma's 512-token window, and page tails everywhere (block size 16).
  const std::vector<std::pair<int, int>> shapes = {{0, 23}, {40, 1}, {17, 9}, {530, 3}, {5, 1}, {16, 16}, {31, 1}};
  kv::BlockPool pool(80, 16);  // before the sequences: their block tables release into it
  std::vector<TestSeq> seqs(shapes.size());
  std::vector<int> widths;
  for (const auto& l : m.spec.layers) widths.push_back(l.n_kv_heads * l.head_dim);
  auto storage = kv::KvStorage::create(widths, 80, 16);
  ASSERT_TRUE(storage.ok());
  model::PagedKv paged{16, 80, {}, {}};
  for (int il = 0; il < m.spec.n_layers; ++il) paged.k.push_back(storage->k(il)), paged.v.push_back(storage->v(il));
  for (size_t i = 0; i < seqs.size(); ++i) {
    seqs[i].n_past = shapes[i].first;
    for (int t = 0; t < shapes[i].first + shapes[i].second; ++t)
      seqs[i].tokens.push_back(int32_t(rng() % uint32_t(m.spec.n_vocab)));
    seqs[i].blocks = std::make_unique<kv::BlockTable>(pool);
    ASSERT_TRUE(seqs[i].blocks->reserve(int(seqs[i].tokens.size())));
  }
  model::CpuDecoder dec(m.spec, m.weights, 0, ThreadPool::global());
  std::vector<std::vector<std::vector<float>>> batched(seqs.size());
  for (int step = 0; step < 2; ++step) {
    model::ForwardBatch b;
    std::vector<size_t> in_batch;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const TestSeq& s = seqs[i];
      const int begin = step == 0 ? 0 : s.n_past, end = step == 0 ? s.n_past : int(s.tokens.size());
      if (begin == end) continue;
      b.add_sequence(std::span<const int32_t>(s.tokens).subspan(size_t(begin), size_t(end - begin)), begin,
                     s.blocks->ids(), true);
      in_batch.push_back(i);
    }
    ASSERT_TRUE(b.plan(16, 80).ok());
    std::vector<float> logits(7, NAN);
    ASSERT_TRUE(dec.forward_batch(b, paged, logits).ok());
    ASSERT_EQ(logits.size(), in_batch.size() * size_t(m.spec.n_vocab));
    for (size_t r = 0; r < in_batch.size(); ++r)
      batched[in_batch[r]].emplace_back(logits.begin() + std::ptrdiff_t(r * m.spec.n_vocab),
                                        logits.begin() + std::ptrdiff_t((r + 1) * m.spec.n_vocab));
  }
  double worst = 0.0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto ref = reference_logits(m, seqs[i]);
    ASSERT_EQ(ref.size(), batched[i].size());
    for (size_t c = 0; c < ref.size(); ++c) {
      const double d = max_abs_diff(ref[c].data(), batched[i][c].data(), ref[c].size());
      worst = std::max(worst, d);
      EXPECT_LE(d, 1e-4) << file << ": sequence " << i << " chunk " << c;
    }
  }
  std::printf("%s: batched vs single max |logit diff| %.3g\n", file, worst);
}

TEST(BatchForward, SmolLM2BatchedEqualsSingle) { check_batched_equals_single("SmolLM2-135M-Instruct.Q4_1.gguf"); }

TEST(BatchForward, Gemma3BatchedEqualsSingleAcrossTheWindow) {
  check_batched_equals_single("gemma-3-270m-q4_k_m.gguf");
}

TEST(BatchForward, BadBatchesAreErrorsNotCrashes) {
  model::ForwardBatch b;
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<int32_t> table = {0};
  b.add_sequence(tokens, 15, table, true);  // positions 15..17 need two blocks of 16
  EXPECT_FALSE(b.plan(16, 4).ok());
  b.clear();
  const std::vector<int32_t> bad_block = {9};
  b.add_sequence(tokens, 0, bad_block, true);
  EXPECT_FALSE(b.plan(16, 4).ok());
  b.clear();
  b.add_sequence(tokens, 0, table, true);
  EXPECT_TRUE(b.plan(16, 4).ok());
  EXPECT_EQ(b.slots, (std::vector<int64_t>{0, 1, 2}));
}

}  // namespace
}  // namespace ember
