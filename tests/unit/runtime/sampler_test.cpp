#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "runtime/generator.h"
#include "runtime/sampler.h"

namespace ember::runtime {
namespace {

TEST(Sampler, GreedyPicksArgmaxAndAppliesRepeatPenalty) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  std::vector<float> logits{0.1f, 3.0f, 2.9f, -1.0f};
  EXPECT_EQ(s.sample(logits), 1);
  p.repeat_penalty = 1.5f;
  Sampler penalised(p);
  penalised.accept(1);
  EXPECT_EQ(penalised.sample(logits), 2);  // 3.0 / 1.5 = 2.0 < 2.9
}

TEST(Sampler, SameSeedSameSequenceAndTopKLimits) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  std::vector<float> logits{1.0f, 1.1f, 0.9f, 1.05f};
  Sampler a(p), b(p);
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) {
    const int x = a.sample(logits);
    EXPECT_EQ(x, b.sample(logits));
    counts[x]++;
  }
  EXPECT_EQ(counts.size(), 2u);  // only ids 1 and 3 survive top-k 2
  EXPECT_GT(counts[1], 800);
  EXPECT_GT(counts[3], 800);
}

TEST(Sampler, TopPAndMinPCut) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 0.5f;
  p.min_p = 0.0f;
  p.seed = 7;
  std::vector<float> logits{5.0f, 0.0f, 0.0f, 0.0f};  // p(0) ~ 0.98 > top_p
  Sampler s(p);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s.sample(logits), 0);
  p.top_p = 1.0f;
  p.min_p = 0.5f;
  std::vector<float> close{2.0f, 1.9f, -3.0f, -3.0f};
  Sampler m(p);
  for (int i = 0; i < 500; ++i) EXPECT_LT(m.sample(close), 2);
}

TEST(StopMatcher, HoldsBackPrefixesAndCutsAtStop) {
  StopMatcher m({"</s>", "STOP"});
  EXPECT_EQ(m.push("hello <"), "hello ");
  EXPECT_EQ(m.push("/"), "");
  EXPECT_EQ(m.push("x"), "</x");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push(" and ST"), " and ");
  EXPECT_EQ(m.push("OP tail"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"ab"});
  EXPECT_EQ(n.push("xa"), "x");
  EXPECT_EQ(n.flush(), "a");
}

}  // namespace
}  // namespace ember::runtime
