// A Linear with an NVFP4 weight, a global scale, a low-rank branch and a pre-quant scale,
// applied by CpuDecoder, equals x'·(deq(W)·s + B·A)ᵀ + bias computed naively in double.
// The Linear is the lm_head of a model with no layers: logits = Linear(rms_norm(embedding)).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "model/decoder.h"
#include "quant/dequantize.h"
#include "quant/fp4.h"

namespace ember {
namespace {

using quant::Type;

std::vector<float> normal(std::mt19937& rng, size_t n, float sigma) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Case {
  bool lowrank = false;
  Type factor_type = Type::F32;
  bool pre_quant_scale = false;
  bool bias = false;
};

void run_case(const Case& c, uint32_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int64_t n_embd = 64, n_vocab = 40, rank = 16;
  model::ModelSpec spec;
  spec.arch = "llama";
  spec.n_embd = int(n_embd);
  spec.n_vocab = int(n_vocab);
  model::Weights w;
  const auto embd = normal(rng, size_t(n_vocab * n_embd), 1.0f);
  w.token_embd = {"token_embd.weight", Type::F32, embd.data(), n_embd, n_vocab, n_embd * 4};
  w.output_norm.assign(size_t(n_embd), 1.0f);

  // W quantized with its global scale; the Linear's data hold blocks, its scale the global.
  const auto wf = normal(rng, size_t(n_vocab * n_embd), 0.05f);
  const float g = quant::nvfp4_global_scale(0.25f);
  const int64_t row = *quant::row_bytes(Type::NVFP4, n_embd);
  std::vector<uint8_t> wq(size_t(row * n_vocab));
  for (int64_t r = 0; r < n_vocab; ++r) quant::quantize_row_nvfp4(&wf[size_t(r * n_embd)], &wq[size_t(r * row)], n_embd, g);
  model::Linear& out = w.output;
  out = {"output.weight", Type::NVFP4, wq.data(), n_embd, n_vocab, row};
  out.scale = g;

  const auto a = normal(rng, size_t(rank * n_embd), 0.1f), b = normal(rng, size_t(n_vocab * rank), 0.1f);
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  for (size_t i = 0; i < a.size(); ++i) a16[i] = fp32_to_bf16(a[i]);
  for (size_t i = 0; i < b.size(); ++i) b16[i] = fp32_to_bf16(b[i]);
  const bool bf = c.factor_type == Type::BF16;
  if (c.lowrank) {
    out.rank = rank;
    out.lowrank_a = {c.factor_type, bf ? static_cast<const void*>(a16.data()) : a.data()};
    out.lowrank_b = {c.factor_type, bf ? static_cast<const void*>(b16.data()) : b.data()};
  }
  std::uniform_real_distribution<float> pos(0.5f, 2.0f);
  if (c.pre_quant_scale)
    for (int64_t i = 0; i < n_embd; ++i) out.pre_quant_scale.push_back(pos(rng));
  if (c.bias) out.bias = normal(rng, size_t(n_vocab), 1.0f);

  const std::vector<int32_t> tokens = {3, 17, 39};
  model::CpuDecoder dec(spec, w, 8, ThreadPool::global());
  std::vector<float> logits;
  ASSERT_TRUE(dec.forward(tokens, 0, true, logits).ok());
  ASSERT_EQ(logits.size(), tokens.size() * size_t(n_vocab));

  std::vector<float> wd(size_t(n_vocab * n_embd));
  quant::dequantize_row_nvfp4(wq.data(), wd.data(), n_vocab * n_embd, g);
  const auto factor = [&](const std::vector<float>& f, const std::vector<uint16_t>& f16, size_t i) {
    return bf ? double(bf16_to_fp32(f16[i])) : double(f[i]);
  };
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* e = &embd[size_t(tokens[t]) * size_t(n_embd)];
    double ss = 0;
    for (int64_t i = 0; i < n_embd; ++i) ss += double(e[i]) * e[i];
    const double inv = 1.0 / std::sqrt(ss / double(n_embd) + spec.norm_eps);
    std::vector<double> x(static_cast<size_t>(n_embd));
    for (int64_t i = 0; i < n_embd; ++i)
      x[size_t(i)] = e[i] * inv * (c.pre_quant_scale ? out.pre_quant_scale[size_t(i)] : 1.0f);
    for (int64_t o = 0; o < n_vocab; ++o) {
      double y = c.bias ? out.bias[size_t(o)] : 0.0, mag = std::fabs(y);
      for (int64_t i = 0; i < n_embd; ++i) {
        double wv = wd[size_t(o * n_embd + i)];
        if (c.lowrank)
          for (int64_t r = 0; r < rank; ++r)
            wv += factor(b, b16, size_t(o * rank + r)) * factor(a, a16, size_t(r * n_embd + i));
        y += x[size_t(i)] * wv;
        mag += std::fabs(x[size_t(i)] * wv);
      }
      EXPECT_NEAR(logits[t * size_t(n_vocab) + size_t(o)], y, 2e-5 * mag + 1e-6) << "token " << t << " out " << o;
    }
  }
}

TEST(LowRankLinear, GlobalScaleOnly) { run_case({}, std::random_device{}()); }
TEST(LowRankLinear, F32Factors) { run_case({true, Type::F32, false, false}, std::random_device{}()); }
TEST(LowRankLinear, Bf16FactorsPreQuantScaleBias) { run_case({true, Type::BF16, true, true}, std::random_device{}()); }

}  // namespace
}  // namespace ember
