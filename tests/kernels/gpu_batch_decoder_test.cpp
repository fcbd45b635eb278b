// The batched GPU decoder on tiny random-weight models (llama with mixed quant formats,
// gemma3 with sliding windows, qk-norm and a tied lm_head): logits of a sequence are the
// same bits alone (in other chunkings) and inside a mixed batch, and close to the CPU
// decoder's forward_batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "formats/gguf/gguf.h"
#include "kernels/cuda_test_util.h"
#include "kernels/tiny_model.h"
#include "kv/kv_storage.h"
#include "model/archs/arch.h"
#include "model/decoder.h"
#include "model/gpu/gpu_batch_decoder.h"
#include "model/weights.h"

namespace ember {
namespace {

using quant::Type;

constexpr int kBlock = 16, kBlocks = 200, kCtx = 700;

// One sequence of the test: its tokens and the block ids it owns in the pool.
struct Seq {
  std::vector<int32_t> tokens;
  std::vector<int32_t> blocks;
};

// Runs `chunks` (sequence index, first position, count) as one batch; logits of every
// chunk's last token.
std::vector<float> run(model::BatchDecoder& dec, const std::vector<Seq>& seqs,
                       const std::vector<std::array<int, 3>>& chunks) {
  model::ForwardBatch b;
  for (const auto& [s, pos, n] : chunks)
    b.add_sequence(std::span<const int32_t>(seqs[size_t(s)].tokens).subspan(size_t(pos), size_t(n)), pos,
                   seqs[size_t(s)].blocks, true);
  EXPECT_TRUE(b.plan(kBlock, kBlocks).ok());
  std::vector<float> logits(3, std::nanf(""));
  const Status st = dec.forward_batch(b, logits);
  EXPECT_TRUE(st.ok()) << st.message();
  return logits;
}

void check_model(const ember_test::TinyModelConfig& cfg) {
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE(cfg.arch + " seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(cfg, rng);
  auto file = gguf::File::parse(bytes, "tiny-" + cfg.arch);
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  ASSERT_TRUE(model::gpu::gpu_batch_supported(*spec, *weights).ok());
  model::gpu::GpuBatchOptions o;
  o.n_ctx = kCtx;
  o.max_tokens = 256;
  o.max_seqs = 8;
  o.verbose = false;
  auto gpu = model::gpu::make_gpu_batch_decoder(*spec, *weights, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  ASSERT_TRUE((*gpu)->allocate_kv(kBlocks, kBlock).ok());
  const int n_vocab = spec->n_vocab;

  // four sequences of 150, 40, 9 and 600 tokens in disjoint shuffled blocks; the 600-token
  // one crosses the attention's 512-key split
  std::vector<int32_t> ids(kBlocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::uniform_int_distribution<int32_t> tok(0, n_vocab - 1);
  std::vector<Seq> seqs;
  size_t next = 0;
  for (int len : {150, 40, 9, 600}) {
    Seq s;
    for (int i = 0; i < len; ++i) s.tokens.push_back(tok(rng));
    for (int b = 0; b < (len + kBlock - 1) / kBlock; ++b) s.blocks.push_back(ids[next++]);
    seqs.push_back(s);
  }
  // Alone: every sequence in its own steps, prompt chunks of 64, logits of the last token
  std::vector<std::vector<float>> alone;
  for (int s = 0; s < 4; ++s) {
    const int len = int(seqs[size_t(s)].tokens.size()) - 1;  // the last token runs as a decode step
    for (int pos = 0; pos < len; pos += 64) run(**gpu, seqs, {{s, pos, std::min(64, len - pos)}});
    alone.push_back(run(**gpu, seqs, {{s, len, 1}}));
  }
  // Mixed: the same sequences (their caches rewritten) in other chunkings, batched
  run(**gpu, seqs, {{3, 0, 100}, {0, 0, 37}, {1, 0, 15}});
  run(**gpu, seqs, {{3, 100, 150}, {0, 37, 3}, {1, 15, 10}});
  run(**gpu, seqs, {{3, 250, 159}, {0, 40, 1}});
  run(**gpu, seqs, {{3, 409, 140}, {0, 41, 108}, {2, 0, 8}});
  const std::vector<float> mixed = run(**gpu, seqs, {{2, 8, 1}, {3, 549, 50}, {0, 149, 1}, {1, 25, 14}});
  const std::vector<float> last3 = run(**gpu, seqs, {{3, 599, 1}});
  const std::vector<std::pair<int, const float*>> got = {{2, mixed.data()}, {0, mixed.data() + 2 * n_vocab},
                                                         {3, last3.data()}};
  for (const auto& [s, row] : got)
    EXPECT_EQ(std::memcmp(row, alone[size_t(s)].data(), size_t(n_vocab) * sizeof(float)), 0)
        << "sequence " << s << ": logits differ alone and batched";

  // Against the CPU decoder's forward_batch (f32 pages, 8-bit activations): the whole of
  // sequence 1 in one batch
  std::vector<int> widths;
  for (const auto& l : spec->layers) widths.push_back(l.n_kv_heads * l.head_dim);
  auto pages = kv::KvStorage::create(widths, kBlocks, kBlock);
  ASSERT_TRUE(pages.ok());
  model::PagedKv paged{kBlock, kBlocks, {}, {}};
  for (int il = 0; il < spec->n_layers; ++il) paged.k.push_back(pages->k(il)), paged.v.push_back(pages->v(il));
  model::CpuDecoder cpu(*spec, *weights, 0, ThreadPool::global());
  model::ForwardBatch b;
  b.add_sequence(seqs[1].tokens, 0, seqs[1].blocks, true);
  ASSERT_TRUE(b.plan(kBlock, kBlocks).ok());
  std::vector<float> lc;
  ASSERT_TRUE(cpu.forward_batch(b, paged, lc).ok());
  const std::vector<float> lg = run(**gpu, seqs, {{1, 0, 40}});
  const double err = cuda_test::normalised_error(lg, lc);
  std::printf("%s: batched GPU vs CPU normalised logit error %.2e\n", cfg.arch.c_str(), err);
  EXPECT_LT(err, 3e-2);
}

TEST(CudaBatchDecoder, LlamaBatchedEqualsAloneAndNearCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "llama";
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.types = {Type::Q4_K, Type::Q6_K, Type::Q8_0, Type::Q5_0, Type::Q4_1, Type::Q4_0, Type::F16};
  check_model(c);
}

TEST(CudaBatchDecoder, Qwen2WithBiasesBatchedEqualsAlone) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "qwen2";
  c.n_kv_heads = 1;
  c.biases = true;
  c.types = {Type::Q8_0, Type::BF16, Type::F16};
  check_model(c);
}

TEST(CudaBatchDecoder, Gemma3BatchedEqualsAloneAndNearCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "gemma3";
  c.n_layers = 4;
  c.n_kv_heads = 1;
  c.head_dim = 256;
  c.window = 24;
  c.window_pattern = 2;
  c.rope_base = 1000000.0f;
  c.tied = true;
  c.types = {Type::Q4_K, Type::Q6_K, Type::Q8_0};
  check_model(c);
}

TEST(CudaBatchDecoder, RejectsBadBatches) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  ember_test::TinyModelConfig cfg;
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(cfg, rng);
  auto file = gguf::File::parse(bytes, "tiny");
  ASSERT_TRUE(file.ok());
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok());
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok());
  model::gpu::GpuBatchOptions o;
  o.n_ctx = 64;
  o.max_tokens = 8;
  o.max_seqs = 2;
  o.verbose = false;
  auto gpu = model::gpu::make_gpu_batch_decoder(*spec, *weights, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  std::vector<int32_t> blocks = {0, 1, 2, 3};
  std::vector<float> logits;
  model::ForwardBatch b;
  b.add_sequence(std::vector<int32_t>{1, 2, 3}, 0, blocks, true);
  ASSERT_TRUE(b.plan(kBlock, 4).ok());
  EXPECT_FALSE((*gpu)->forward_batch(b, logits).ok()) << "no KV cache yet";
  ASSERT_TRUE((*gpu)->allocate_kv(4, kBlock).ok());
  EXPECT_FALSE((*gpu)->allocate_kv(4, kBlock).ok()) << "allocated twice";
  EXPECT_TRUE((*gpu)->forward_batch(b, logits).ok());
  EXPECT_EQ(logits.size(), size_t(spec->n_vocab));
  model::ForwardBatch big;
  big.add_sequence(std::vector<int32_t>(9, 1), 0, blocks, true);  // 9 tokens > max_tokens
  ASSERT_TRUE(big.plan(kBlock, 4).ok());
  EXPECT_FALSE((*gpu)->forward_batch(big, logits).ok());
  model::ForwardBatch bad;
  bad.add_sequence(std::vector<int32_t>{spec->n_vocab}, 0, blocks, true);
  ASSERT_TRUE(bad.plan(kBlock, 4).ok());
  EXPECT_FALSE((*gpu)->forward_batch(bad, logits).ok()) << "token id out of range";
  model::ForwardBatch far;
  far.add_sequence(std::vector<int32_t>{1}, 63, std::vector<int32_t>{0, 1, 2, 3}, true);
  ASSERT_TRUE(far.plan(kBlock, 4).ok());
  EXPECT_TRUE((*gpu)->forward_batch(far, logits).ok()) << "position 63 of a 64-token context";
}

}  // namespace
}  // namespace ember
