// Sampling with a token filter (a grammar): the result must follow the sampler's chain
// applied to the allowed tokens only (docs/grammar.md).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/token_output.h"

namespace ember::runtime {
namespace {

std::vector<float> random_logits(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> out(n);
  for (auto& x : out) x = d(rng);
  return out;
}

// Expected probabilities: softmax(logits / temp) over the allowed ids, the top `k` of them.
std::vector<double> masked(const std::vector<float>& logits, const std::vector<bool>& ok, float temp, size_t k) {
  std::vector<int> ids;
  for (size_t i = 0; i < logits.size(); ++i)
    if (ok[i]) ids.push_back(int(i));
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[size_t(a)] > logits[size_t(b)]; });
  if (k > 0 && ids.size() > k) ids.resize(k);
  std::vector<double> p(logits.size(), 0.0);
  double sum = 0.0;
  for (int i : ids) sum += p[size_t(i)] = std::exp(double(logits[size_t(i)]) / temp);
  for (auto& x : p) x /= sum;
  return p;
}

void expect_distribution(SamplingParams params, size_t top_k, uint64_t seed) {
  const auto logits = random_logits(200, seed);
  std::vector<bool> ok(logits.size());
  std::mt19937_64 rng(seed + 1);
  for (size_t i = 0; i < ok.size(); ++i) ok[i] = rng() % 3 == 0;
  params.seed = seed;
  Sampler s(params);
  const int n = 40000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(logits, [&](int32_t id) { return bool(ok[size_t(id)]); });
    ASSERT_GE(t, 0);
    ASSERT_TRUE(ok[size_t(t)]) << "sampled a refused token " << t;
    ++counts[size_t(t)];
  }
  const auto want = masked(logits, ok, params.temperature, top_k);
  for (size_t i = 0; i < logits.size(); ++i) {
    const double got = double(counts[i]) / n;
    const double sd = std::sqrt(want[i] * (1 - want[i]) / n);
    EXPECT_NEAR(got, want[i], 5 * sd + 1e-4) << "token " << i;
  }
}

TEST(ConstrainedSampler, GreedyTakesTheBestAllowedToken) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  const auto logits = random_logits(5000, 3);
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[size_t(a)] > logits[size_t(b)]; });
  // Allow only the 700th best: the walk must go past several sorted blocks.
  const int32_t only = order[700];
  EXPECT_EQ(s.sample(logits, [&](int32_t id) { return id == only; }), only);
  EXPECT_EQ(s.sample(logits, [](int32_t) { return false; }), -1);
}

TEST(ConstrainedSampler, TemperatureOnlyIsTheMaskedDistribution) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  expect_distribution(p, 0, 11);
}

TEST(ConstrainedSampler, TopKKeepsTheTopAllowedTokens) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 5;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  expect_distribution(p, 5, 12);
}

TEST(ConstrainedSampler, RareAllowedTokensStillFollowTheirOdds) {
  // The allowed tokens hold ~1e-9 of the mass: many refusals, then the direct draw.
  std::vector<float> logits(100, 0.0f);
  for (int i = 0; i < 98; ++i) logits[size_t(i)] = 25.0f;
  logits[98] = 1.0f;
  logits[99] = 1.0f + std::log(3.0f);  // three times as likely as 98
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 5;
  Sampler s(p);
  int n99 = 0;
  for (int i = 0; i < 4000; ++i) {
    const int32_t t = s.sample(logits, [](int32_t id) { return id >= 98; });
    ASSERT_TRUE(t == 98 || t == 99);
    n99 += t == 99;
  }
  EXPECT_NEAR(n99 / 4000.0, 0.75, 0.04);
}

TEST(ConstrainedSampler, LogprobsAreOfTheMaskedDistribution) {
  const std::vector<float> logits = {5.0f, 1.0f, 2.0f, 0.0f};
  EngineEvent ev;
  fill_logprobs_allowed(logits, 2, 2, [](int32_t id) { return id == 1 || id == 2; }, ev);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0));
  EXPECT_NEAR(ev.logprob.logprob, 2.0 - lse, 1e-5);
  ASSERT_EQ(ev.top.size(), 2u);
  EXPECT_EQ(ev.top[0].token, 2);
  EXPECT_EQ(ev.top[1].token, 1);
  EXPECT_NEAR(ev.top[1].logprob, 1.0 - lse, 1e-5);
}

}  // namespace
}  // namespace ember::runtime
