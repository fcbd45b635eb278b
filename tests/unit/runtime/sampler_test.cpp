#include <gtest/gtest.h>

#include <filesystem>
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

TEST(Sampler, BannedTokensAreNeverChosenGreedyOrSampled) {
  std::vector<float> logits{0.0f, 9.0f, 8.5f, 1.0f, 8.9f};
  SamplingParams p;
  p.temperature = 0.0f;
  p.banned = {1, 4, -3, 99};  // out-of-range ids are ignored
  Sampler greedy(p);
  EXPECT_EQ(greedy.sample(logits), 2);
  p.temperature = 5.0f;  // flat: every unbanned token is likely
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 3;
  Sampler hot(p);
  std::map<int, int> counts;
  for (int i = 0; i < 3000; ++i) counts[hot.sample(logits)]++;
  EXPECT_EQ(counts.count(1), 0u);
  EXPECT_EQ(counts.count(4), 0u);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[3], 0);
  p.top_k = 1;  // top-k counts only unbanned tokens
  Sampler top1(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(top1.sample(logits), 2);
  p.banned = {0, 1, 2, 3, 4};  // all banned: falls back to the argmax rather than failing
  Sampler all(p);
  EXPECT_EQ(all.sample(logits), 1);
}

TEST(Sampler, InvalidTokensAreUnusedAndPaddingIdsOnly) {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not present: " << path;
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok());
  auto tok = tok::Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok());
  const int32_t n = tok->n_vocab();
  const auto banned = invalid_tokens(*tok, n + 3);  // an output layer with 3 padding rows
  ASSERT_GE(banned.size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(banned.end() - 3, banned.end()), (std::vector<int32_t>{n, n + 1, n + 2}));
  for (int32_t id : banned)
    if (id < n) EXPECT_EQ(tok->token_type(id), tok::TokenType::unused) << id;
  for (const char* special : {"<start_of_turn>", "<end_of_turn>", "<eos>"}) {
    const auto id = tok->find_token(special);
    ASSERT_TRUE(id.has_value()) << special;
    EXPECT_EQ(std::count(banned.begin(), banned.end(), *id), 0) << special;
  }
  EXPECT_EQ(invalid_tokens(*tok, 10).size(), size_t(std::count_if(banned.begin(), banned.end(), [](int32_t id) { return id < 10; })));
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
