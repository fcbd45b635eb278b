// GpuDecoder against CpuDecoder on tiny random-weight models (llama, qwen2, gemma3
// layouts; mixed quant formats): prefill, decode steps, multi-token steps, rewinds, and
// prompts longer than one device step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "formats/gguf/gguf.h"
#include "kernels/cuda_test_util.h"
#include "kernels/tiny_model.h"
#include "model/archs/arch.h"
#include "model/decoder.h"
#include "model/gpu/gpu_decoder.h"
#include "model/weights.h"

namespace ember {
namespace {

using quant::Type;

struct Agreement {
  double max_err = 0.0;
  int rows = 0, top1_same = 0;
};

// Compares [rows][n_vocab] logits row by row. A different top-1 counts as agreeing when
// the CPU logit of the GPU's choice is within 2% of the row's rms of the CPU maximum.
void compare_logits(const std::vector<float>& gpu, const std::vector<float>& cpu, int n_vocab, Agreement& a) {
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t r = 0; r < cpu.size() / size_t(n_vocab); ++r) {
    const std::vector<float> g(gpu.begin() + long(r * n_vocab), gpu.begin() + long((r + 1) * n_vocab));
    const std::vector<float> c(cpu.begin() + long(r * n_vocab), cpu.begin() + long((r + 1) * n_vocab));
    a.max_err = std::max(a.max_err, cuda_test::normalised_error(g, c));
    const size_t gi = size_t(std::max_element(g.begin(), g.end()) - g.begin());
    const float c_max = *std::max_element(c.begin(), c.end());
    double rms = 0;
    for (float v : c) rms += double(v) * v;
    rms = std::sqrt(rms / double(n_vocab));
    a.top1_same += c[gi] >= c_max - 0.02 * rms;
    a.rows++;
  }
}

void run_both(model::Decoder& cpu, model::Decoder& gpu, const std::vector<int32_t>& tokens, int pos, bool all,
              int n_vocab, Agreement& a, std::vector<float>* cpu_logits = nullptr) {
  std::vector<float> lc, lg(3, std::nanf(""));
  Status st = cpu.forward(tokens, pos, all, lc);
  ASSERT_TRUE(st.ok()) << st.message();
  st = gpu.forward(tokens, pos, all, lg);
  ASSERT_TRUE(st.ok()) << st.message();
  compare_logits(lg, lc, n_vocab, a);
  if (cpu_logits != nullptr) *cpu_logits = std::move(lc);
}

void compare_decoders(const ember_test::TinyModelConfig& cfg, int max_batch) {
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
  const int n_ctx = 200, n_vocab = spec->n_vocab;
  model::CpuDecoder cpu(*spec, *weights, n_ctx, ThreadPool::global());
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = n_ctx;
  o.max_batch = max_batch;
  o.verbose = false;
  auto gpu = model::gpu::make_gpu_decoder(*spec, *weights, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();

  std::uniform_int_distribution<int32_t> id(0, n_vocab - 1);
  std::vector<int32_t> prompt(37);
  for (auto& t : prompt) t = id(rng);
  Agreement a;
  std::vector<float> lc;
  run_both(cpu, **gpu, prompt, 0, true, n_vocab, a, &lc);  // prefill, every row's logits
  int pos = int(prompt.size());
  for (int step = 0; step < 6; ++step, ++pos) {  // greedy decode on the CPU's choice
    const auto last = lc.end() - n_vocab;
    const int32_t next = int32_t(std::max_element(last, lc.end()) - last);
    run_both(cpu, **gpu, {next}, pos, false, n_vocab, a, &lc);
  }
  run_both(cpu, **gpu, {id(rng), id(rng), id(rng)}, pos, true, n_vocab, a);  // a 3-token step
  run_both(cpu, **gpu, {id(rng), id(rng), id(rng), id(rng), id(rng)}, 20, true, n_vocab, a);  // rewind
  std::vector<int32_t> longer(150);  // longer than one step of max_batch tokens
  for (auto& t : longer) t = id(rng);
  run_both(cpu, **gpu, longer, 25, false, n_vocab, a);
  std::printf("%s: %d rows, top-1 agreement %d, max normalised logit error %.2e\n", cfg.arch.c_str(), a.rows,
              a.top1_same, a.max_err);
  EXPECT_EQ(a.top1_same, a.rows);
  // The CPU quantizes activations to 8 bits per matmul; the GPU keeps them in fp32 (f16 for prefill GEMMs).
  EXPECT_LT(a.max_err, 3e-2);
}

TEST(CudaDecoder, LlamaMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "llama";
  c.types = {Type::Q4_K, Type::Q6_K, Type::Q8_0, Type::Q5_0, Type::Q4_1, Type::Q4_0, Type::F16};
  compare_decoders(c, 16);  // prompts run in chunks of 16, 16, 5 tokens
}

TEST(CudaDecoder, Qwen2WithBiasesMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "qwen2";
  c.n_layers = 3;
  c.n_kv_heads = 1;
  c.biases = true;
  c.rope_base = 1000000.0f;
  c.embd_type = Type::Q4_K;
  c.output_type = Type::Q8_0;
  c.types = {Type::Q8_0, Type::Q4_1, Type::Q5_0, Type::Q6_K, Type::BF16};
  compare_decoders(c, 256);
}

TEST(CudaDecoder, Gemma3MatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.arch = "gemma3";
  c.n_layers = 4;
  c.n_kv_heads = 1;
  c.head_dim = 128;
  c.window = 8;
  c.window_pattern = 2;
  c.rope_base = 1000000.0f;
  c.tied = true;
  c.embd_type = Type::Q8_0;
  c.types = {Type::Q4_K, Type::Q6_K, Type::Q5_0, Type::Q8_0};
  compare_decoders(c, 64);
}

TEST(CudaDecoder, RejectsBadInput) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  std::mt19937 rng(1);
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(c, rng);
  auto file = gguf::File::parse(bytes, "tiny");
  ASSERT_TRUE(file.ok());
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok());
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok());
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = 16;
  o.verbose = false;
  auto gpu = model::gpu::make_gpu_decoder(*spec, *weights, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  std::vector<float> logits;
  EXPECT_FALSE((*gpu)->forward(std::vector<int32_t>{}, 0, false, logits).ok());
  EXPECT_FALSE((*gpu)->forward(std::vector<int32_t>{5, c.n_vocab}, 0, false, logits).ok());
  EXPECT_FALSE((*gpu)->forward(std::vector<int32_t>(17, 1), 0, false, logits).ok());
  EXPECT_FALSE((*gpu)->forward(std::vector<int32_t>{1}, 16, false, logits).ok());
  EXPECT_TRUE((*gpu)->forward(std::vector<int32_t>{1}, 15, false, logits).ok());
  o.device = 4096;
  EXPECT_FALSE(model::gpu::make_gpu_decoder(*spec, *weights, o).ok());
}

}  // namespace
}  // namespace ember
