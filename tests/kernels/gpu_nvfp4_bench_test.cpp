// Decode / prefill throughput of GpuDecoder with NVFP4 layer matrices (llama-3-8B shape,
// f16 embedding and lm_head), with and without rank-32 BF16 low-rank factors on every
// Linear. The NVFP4 bytes are random (valid E4M3 block scales), shared between matrices of
// one shape on the host (each is uploaded separately). Disabled by default; on the GPU:
//   test_kernels_cuda --gtest_also_run_disabled_tests --gtest_filter='CudaBenchNvfp4.*'
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "formats/gguf/gguf.h"
#include "kernels/cuda_test_util.h"
#include "kernels/tiny_model.h"
#include "model/archs/arch.h"
#include "model/gpu/gpu_decoder.h"
#include "model/weights.h"

namespace ember {
namespace {

using quant::Type;

std::vector<uint8_t> random_nvfp4(int64_t n_out, int64_t n_in, uint64_t seed) {
  std::vector<uint8_t> b(size_t(n_out * (n_in / 16) * 9));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < b.size(); ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    b[i] = uint8_t(s >> 24);
  }
  for (size_t i = 0; i < b.size(); i += 9) b[i] = uint8_t(0x28 + (b[i] & 15));  // E4M3 scales 2^-2 .. 2^-1·1.875
  return b;
}

void bench_nvfp4(int rank, const char* label) {
  EMBER_REQUIRE_CUDA_DEVICE();
  ember_test::TinyModelConfig c;
  c.n_layers = 32;
  c.n_embd = 4096;
  c.n_ff = 14336;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.n_vocab = 128256;
  c.rope_base = 500000.0f;
  c.embd_type = Type::F16;
  c.output_type = Type::F16;
  c.types = {Type::Q4_0};  // replaced below
  c.distinct_rows = 16;
  std::mt19937 rng(7);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(c, rng);
  auto file = gguf::File::parse(bytes, label);
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  std::map<std::pair<int64_t, int64_t>, std::vector<uint8_t>> packed;
  std::vector<uint16_t> factors(size_t(rank) * size_t(c.n_ff), 0x3c00);  // bf16 0.0078125 everywhere
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = uint16_t(0x3c00 + (i * 2654435761u >> 24) % 64);
  uint64_t n_bytes = weights->n_bytes;
  for (auto& lw : weights->layers)
    for (model::Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      auto& b = packed[{l->n_out, l->n_in}];
      if (b.empty()) b = random_nvfp4(l->n_out, l->n_in, uint64_t(l->n_out * 31 + l->n_in));
      n_bytes -= uint64_t(l->row_bytes * l->n_out);
      l->type = Type::NVFP4;
      l->row_bytes = l->n_in / 16 * 9;
      l->data = b.data();
      l->scale = 0.01f;
      n_bytes += uint64_t(l->row_bytes * l->n_out);
      if (rank > 0) {
        l->rank = rank;
        l->lowrank_a = {Type::BF16, factors.data()};
        l->lowrank_b = {Type::BF16, factors.data()};
        n_bytes += uint64_t(2 * rank * (l->n_in + l->n_out));
      }
    }
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = 4096;
  o.max_batch = 2048;
  auto dec = model::gpu::make_gpu_decoder(*spec, *weights, o);
  ASSERT_TRUE(dec.ok()) << dec.status().message();
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uniform_int_distribution<int32_t> id(0, spec->n_vocab - 1);
  const int n_prompt = 2048;
  std::vector<int32_t> prompt(n_prompt);
  for (auto& t : prompt) t = id(rng);
  std::vector<float> logits;
  ASSERT_TRUE((*dec)->forward(prompt, 0, false, logits).ok());  // warm-up
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*dec)->forward(prompt, 0, false, logits).ok());
  const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const int n_decode = 128;
  for (int i = 0; i < 8; ++i) {  // warm-up (graph capture)
    const int32_t one[1] = {id(rng)};
    ASSERT_TRUE((*dec)->forward(one, 16 + i, false, logits).ok());
  }
  t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < n_decode; ++i) {
    const int32_t next[1] = {int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    ASSERT_TRUE((*dec)->forward(next, 24 + i, false, logits).ok());
  }
  const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double gb = double(n_bytes - uint64_t(c.n_vocab) * uint64_t(c.n_embd) * 2) / 1e9;  // less the embedding
  std::printf("BENCH %s: %.2f GB read per token; pp%d %.1f ms (%.0f tok/s); tg%d %.3f ms/token (%.1f tok/s, "
              "%.0f GB/s = %.0f%% of 3.03 TB/s) [setup %.1f s]\n",
              label, gb, n_prompt, prefill_s * 1e3, n_prompt / prefill_s, n_decode, decode_s * 1e3 / n_decode,
              n_decode / decode_s, gb * n_decode / decode_s, 100.0 * gb * n_decode / decode_s / 3030.0, build_s);
}

TEST(CudaBenchNvfp4, DISABLED_Llama8BShapeNvfp4) { bench_nvfp4(0, "llama-8b-shape-nvfp4"); }
TEST(CudaBenchNvfp4, DISABLED_Llama8BShapeNvfp4Rank32) { bench_nvfp4(32, "llama-8b-shape-nvfp4-rank32"); }

}  // namespace
}  // namespace ember
