// Decode / prefill throughput of GpuDecoder on random weights of real model shapes.
// Disabled by default; run on the GPU machine with
//   test_kernels_cuda --gtest_also_run_disabled_tests --gtest_filter='CudaBench.*'
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "formats/gguf/gguf.h"
#include "kernels/cuda_test_util.h"
#include "kernels/tiny_model.h"
#include "model/archs/arch.h"
#include "model/gpu/gpu_decoder.h"
#include "model/weights.h"

namespace ember {
namespace {

void bench(const ember_test::TinyModelConfig& cfg, const char* label) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(7);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(cfg, rng);
  auto file = gguf::File::parse(bytes, label);
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = 2048;
  o.max_batch = 512;
  auto dec = model::gpu::make_gpu_decoder(*spec, *weights, o);
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uniform_int_distribution<int32_t> id(0, spec->n_vocab - 1);
  std::vector<int32_t> prompt(512);
  for (auto& t : prompt) t = id(rng);
  std::vector<float> logits;
  ASSERT_TRUE((*dec)->forward(prompt, 0, false, logits).ok());  // warm-up (cuBLAS, module load)
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*dec)->forward(prompt, 0, false, logits).ok());
  const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const int n_decode = 128;
  for (int i = 0; i < 8; ++i) {  // warm-up
    const int32_t one[1] = {id(rng)};
    ASSERT_TRUE((*dec)->forward(one, 512 + i, false, logits).ok());
  }
  t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < n_decode; ++i) {
    const int32_t next[1] = {int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    ASSERT_TRUE((*dec)->forward(next, 512 + i, false, logits).ok());
  }
  const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("BENCH %s: %.2f GB of weights; prefill 512 tokens %.1f ms (%.0f tok/s); decode %.2f ms/token "
              "(%.1f tok/s, %.0f GB/s of weights) [setup %.1f s]\n",
              label, double(weights->n_bytes) / 1e9, prefill_s * 1e3, 512 / prefill_s, decode_s * 1e3 / n_decode,
              n_decode / decode_s, double(weights->n_bytes) / 1e9 * n_decode / decode_s, build_s);
}

TEST(CudaBench, DISABLED_Llama8BShapeQ4K) {
  ember_test::TinyModelConfig c;
  c.n_layers = 32;
  c.n_embd = 4096;
  c.n_ff = 14336;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.n_vocab = 128256;
  c.rope_base = 500000.0f;
  c.embd_type = quant::Type::Q4_K;
  c.output_type = quant::Type::Q6_K;
  c.types = {quant::Type::Q4_K, quant::Type::Q4_K, quant::Type::Q6_K, quant::Type::Q4_K, quant::Type::Q4_K,
             quant::Type::Q4_K, quant::Type::Q6_K};  // q k v o gate up down, Q4_K_M-like
  c.distinct_rows = 64;
  bench(c, "llama-8b-shape-q4_k_m");
}

TEST(CudaBench, DISABLED_Llama1BShapeQ8_0) {
  ember_test::TinyModelConfig c;
  c.n_layers = 16;
  c.n_embd = 2048;
  c.n_ff = 8192;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 64;
  c.n_vocab = 128256;
  c.rope_base = 500000.0f;
  c.embd_type = quant::Type::Q8_0;
  c.output_type = quant::Type::Q8_0;
  c.types = {quant::Type::Q8_0};
  c.distinct_rows = 64;
  bench(c, "llama-1b-shape-q8_0");
}

}  // namespace
}  // namespace ember
