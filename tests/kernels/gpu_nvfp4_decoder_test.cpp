// GpuDecoder against CpuDecoder on a tiny llama whose layer matrices are NVFP4 (global
// scale, rank-32 low-rank factors in BF16 and F32, pre_quant_scale) with one MXFP4 matrix:
// every Linear runs through cuda::linear_fp4 (decode and prefill).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "formats/gguf/gguf.h"
#include "kernels/cuda_test_util.h"
#include "kernels/tiny_model.h"
#include "model/archs/arch.h"
#include "model/decoder.h"
#include "model/gpu/gpu_decoder.h"
#include "model/weights.h"
#include "quant/dequantize.h"
#include "quant/fp4.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using quant::Type;

// Owns the bytes the rewritten Linears point at.
struct Storage {
  std::deque<std::vector<uint8_t>> bytes;
  const void* keep(std::vector<uint8_t> v) { return bytes.emplace_back(std::move(v)).data(); }
};

std::vector<uint8_t> random_factor(std::mt19937& rng, size_t n, bool bf16) {
  std::normal_distribution<float> dist(0.0f, 0.03f);
  std::vector<uint8_t> out(n * (bf16 ? 2 : 4));
  for (size_t i = 0; i < n; ++i) {
    const float v = dist(rng);
    if (bf16) {
      const uint16_t h = fp32_to_bf16(v);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v, 4);
    }
  }
  return out;
}

// Requantizes l (its dequantized values) to `type` and adds the extras.
void to_fp4(model::Linear& l, Type type, int rank, bool pqs, bool bf16, std::mt19937& rng, Storage& s) {
  std::vector<float> w(size_t(l.n_in * l.n_out));
  for (int64_t r = 0; r < l.n_out; ++r) quant::dequantize_row(l.type, l.row(r), &w[size_t(r * l.n_in)], l.n_in);
  const int64_t rb = *quant::row_bytes(type, l.n_in);
  std::vector<uint8_t> q(size_t(rb * l.n_out));
  float amax = 0.0f;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  const float g = quant::nvfp4_global_scale(amax);
  for (int64_t r = 0; r < l.n_out; ++r) {
    if (type == Type::NVFP4) quant::quantize_row_nvfp4(&w[size_t(r * l.n_in)], &q[size_t(r * rb)], l.n_in, g);
    else quant::quantize_row(type, &w[size_t(r * l.n_in)], &q[size_t(r * rb)], l.n_in);
  }
  l.type = type;
  l.row_bytes = rb;
  l.data = s.keep(std::move(q));
  l.scale = type == Type::NVFP4 ? g : 1.0f;
  if (rank > 0) {
    l.rank = rank;
    const Type ft = bf16 ? Type::BF16 : Type::F32;
    l.lowrank_a = {ft, s.keep(random_factor(rng, size_t(rank * l.n_in), bf16))};
    l.lowrank_b = {ft, s.keep(random_factor(rng, size_t(l.n_out * rank), bf16))};
  }
  if (pqs) {
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    l.pre_quant_scale.resize(size_t(l.n_in));
    for (float& v : l.pre_quant_scale) v = u(rng);
  }
}

double max_normalised_error(const std::vector<float>& a, const std::vector<float>& b, int n_vocab, int& top1_same,
                            int& rows) {
  double worst = 0.0;
  for (size_t r = 0; r < b.size() / size_t(n_vocab); ++r) {
    const std::vector<float> g(a.begin() + long(r * n_vocab), a.begin() + long((r + 1) * n_vocab));
    const std::vector<float> c(b.begin() + long(r * n_vocab), b.begin() + long((r + 1) * n_vocab));
    worst = std::max(worst, cuda_test::normalised_error(g, c));
    top1_same += std::max_element(g.begin(), g.end()) - g.begin() == std::max_element(c.begin(), c.end()) - c.begin();
    rows++;
  }
  return worst;
}

TEST(CudaDecoderNvfp4, LowRankModelMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  ember_test::TinyModelConfig cfg;
  cfg.n_layers = 2;
  cfg.output_type = Type::F16;
  cfg.embd_type = Type::F16;
  cfg.types = {Type::F16};
  const std::vector<uint8_t> bytes = ember_test::build_tiny_gguf(cfg, rng);
  auto file = gguf::File::parse(bytes, "tiny-nvfp4");
  ASSERT_TRUE(file.ok()) << file.status().message();
  auto spec = model::spec_from_gguf(*file);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto weights = model::load_weights(*file, *spec);
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  Storage s;
  int i = 0;
  for (auto& lw : weights->layers)
    for (model::Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down}) {
      const Type t = i == 5 ? Type::MXFP4 : Type::NVFP4;
      to_fp4(*l, t, i == 3 ? 0 : 32, i % 3 == 0, i % 2 == 0, rng, s);
      ++i;
    }
  const int n_ctx = 128, n_vocab = spec->n_vocab;
  model::CpuDecoder cpu(*spec, *weights, n_ctx, ThreadPool::global());
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = n_ctx;
  o.max_batch = 16;
  o.verbose = false;
  auto gpu = model::gpu::make_gpu_decoder(*spec, *weights, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();

  std::uniform_int_distribution<int32_t> id(0, n_vocab - 1);
  std::vector<int32_t> prompt(37);  // chunks of 16, 16, 5 tokens
  for (auto& t : prompt) t = id(rng);
  int top1 = 0, rows = 0;
  double worst = 0.0;
  std::vector<float> lc, lg;
  ASSERT_TRUE(cpu.forward(prompt, 0, true, lc).ok());
  ASSERT_TRUE((*gpu)->forward(prompt, 0, true, lg).ok());
  worst = std::max(worst, max_normalised_error(lg, lc, n_vocab, top1, rows));
  int pos = int(prompt.size());
  for (int step = 0; step < 5; ++step, ++pos) {
    const int32_t next = int32_t(std::max_element(lc.end() - n_vocab, lc.end()) - (lc.end() - n_vocab));
    const std::vector<int32_t> one = {next};
    ASSERT_TRUE(cpu.forward(one, pos, false, lc).ok());
    ASSERT_TRUE((*gpu)->forward(one, pos, false, lg).ok());
    worst = std::max(worst, max_normalised_error(lg, lc, n_vocab, top1, rows));
  }
  std::printf("nvfp4 low-rank: %d rows, top-1 equal %d, max normalised logit error %.2e\n", rows, top1, worst);
  EXPECT_GE(top1, rows - 1);  // MXFP4 on the CPU dots 8-bit activations: a near tie may flip
  EXPECT_LT(worst, 2e-2);
}

}  // namespace
}  // namespace ember
