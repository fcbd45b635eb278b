// The scheduler alone (no model): token budget shared by decodes and chunked prefill,
// --max-seqs, prefix-cache admission, preemption of the newest sequence, rejection of
// sequences that cannot fit even alone.
#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

namespace ember::runtime {
namespace {

std::unique_ptr<Sequence> make_seq(RequestId id, int n_prompt, int32_t first_token = 0) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->tokens.resize(size_t(n_prompt));
  std::iota(s->tokens.begin(), s->tokens.end(), first_token);
  s->n_prompt = n_prompt;
  return s;
}

// What the engine does after a forward: the chunk is computed; a sequence whose chunk
// reached its end gets one more (sampled) token.
void complete(const StepPlan& plan, kv::BlockPool& pool) {
  for (const Chunk& c : plan.chunks) {
    const bool sampled = c.wants_logits();
    c.seq->n_computed += c.n_tokens;
    kv::publish_full_blocks(pool, c.seq->tokens, c.seq->n_computed, c.seq->blocks);
    if (sampled) c.seq->tokens.push_back(7);
  }
}

int tokens_of(const StepPlan& plan, RequestId id) {
  for (const Chunk& c : plan.chunks)
    if (c.seq->id == id) return c.n_tokens;
  return 0;
}

TEST(Scheduler, DecodesFirstThenChunkedPrefillUnderTheBudget) {
  kv::BlockPool pool(64, 16);
  Scheduler s({8, 20}, pool);
  for (RequestId id = 1; id <= 3; ++id) s.add(make_seq(id, 4, int32_t(100 * id)));
  complete(s.schedule(), pool);  // three short prompts prefilled, one token sampled each
  s.add(make_seq(4, 100, 1000));
  StepPlan p = s.schedule();
  EXPECT_EQ(tokens_of(p, 1), 1);
  EXPECT_EQ(tokens_of(p, 2), 1);
  EXPECT_EQ(tokens_of(p, 3), 1);
  EXPECT_EQ(tokens_of(p, 4), 17) << "the rest of the budget goes to the new prompt";
  EXPECT_FALSE(p.chunks.back().wants_logits());
  complete(p, pool);
  p = s.schedule();
  EXPECT_EQ(tokens_of(p, 4), 17) << "a partial prefill continues after the decodes";
  EXPECT_EQ(s.n_running(), 4);
}

TEST(Scheduler, MaxSeqsLimitsAdmission) {
  kv::BlockPool pool(64, 16);
  Scheduler s({2, 100}, pool);
  for (RequestId id = 1; id <= 3; ++id) s.add(make_seq(id, 5, int32_t(100 * id)));
  const StepPlan p = s.schedule();
  EXPECT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(s.n_running(), 2);
  EXPECT_EQ(s.n_waiting(), 1);
}

TEST(Scheduler, PrefixHitsAreNotComputedAgain) {
  kv::BlockPool pool(64, 4);
  Scheduler s({4, 100}, pool);
  s.add(make_seq(1, 10));
  complete(s.schedule(), pool);
  s.remove(1);  // finished: its two full blocks stay cached
  s.add(make_seq(2, 10));
  const StepPlan p = s.schedule();
  EXPECT_EQ(tokens_of(p, 2), 2);
  EXPECT_EQ(p.chunks[0].seq->n_cached, 8);
}

TEST(Scheduler, PreemptsTheNewestWhenTheCacheIsFull) {
  kv::BlockPool pool(4, 4);  // 16 tokens
  Scheduler s({4, 100}, pool);
  s.add(make_seq(1, 8, 0));
  s.add(make_seq(2, 8, 50));
  complete(s.schedule(), pool);  // both prefilled, 9 tokens each: the 9th needs a third block
  EXPECT_EQ(pool.n_free(), 0);
  const StepPlan p = s.schedule();
  EXPECT_EQ(p.n_preempted, 1);
  EXPECT_EQ(s.n_preemptions(), 1u);
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].seq->id, 1u) << "the oldest keeps running";
  EXPECT_EQ(s.n_waiting(), 1);
  auto preempted = s.remove(2);
  ASSERT_TRUE(preempted);
  EXPECT_EQ(preempted->n_computed, 0) << "it is computed again later";
  EXPECT_EQ(preempted->blocks.n_blocks(), 0);
  EXPECT_EQ(preempted->tokens.size(), 9u) << "its tokens (and sampled one) are kept";
}

TEST(Scheduler, RejectsWhatCannotFitEvenAlone) {
  kv::BlockPool pool(2, 4);  // 8 tokens
  Scheduler s({4, 100}, pool);
  s.add(make_seq(1, 9));
  StepPlan p = s.schedule();
  ASSERT_EQ(p.rejected.size(), 1u);
  EXPECT_NE(p.rejected[0].second.find("too small"), std::string::npos);
  s.add(make_seq(2, 8));
  p = s.schedule();
  ASSERT_EQ(p.chunks.size(), 1u);
  complete(p, pool);  // 9 tokens now, alone: no one to preempt
  p = s.schedule();
  ASSERT_EQ(p.rejected.size(), 1u);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(pool.n_free(), 2) << "its blocks went back (cached ones count as free)";
}

}  // namespace
}  // namespace ember::runtime
