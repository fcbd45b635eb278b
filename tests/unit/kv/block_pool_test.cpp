// The paged KV cache's block manager: allocation, reference counts, RAII tables,
// prefix hits and misses, LRU eviction of cached free blocks, exhaustion.
#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <set>

namespace ember::kv {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(BlockPool, AllocateReleaseAndRefcounts) {
  BlockPool pool(4, 16);
  EXPECT_EQ(pool.n_free(), 4);
  std::set<BlockId> ids;
  for (int i = 0; i < 4; ++i) {
    auto id = pool.allocate();
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(pool.ref_count(*id), 1);
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_FALSE(pool.allocate().has_value()) << "an exhausted pool hands out nothing";
  const BlockId a = *ids.begin();
  pool.retain(a);
  EXPECT_EQ(pool.ref_count(a), 2);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 0) << "still referenced once";
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.allocate(), a);
}

TEST(BlockTable, ReserveGrowsAndReleasesOnDestruction) {
  BlockPool pool(5, 16);
  {
    BlockTable t(pool);
    ASSERT_TRUE(t.reserve(1));
    EXPECT_EQ(t.n_blocks(), 1);
    ASSERT_TRUE(t.reserve(16));
    EXPECT_EQ(t.n_blocks(), 1) << "16 tokens fit one block";
    ASSERT_TRUE(t.reserve(17));
    EXPECT_EQ(t.n_blocks(), 2);
    EXPECT_FALSE(t.reserve(16 * 6)) << "more than the pool";
    EXPECT_EQ(t.n_blocks(), 2) << "a failed reserve changes nothing";
    EXPECT_EQ(pool.n_free(), 3);
    BlockTable moved = std::move(t);
    EXPECT_EQ(moved.n_blocks(), 2);
    EXPECT_EQ(t.n_blocks(), 0);
    EXPECT_EQ(pool.n_free(), 3);
  }
  EXPECT_EQ(pool.n_free(), 5) << "RAII: every block came back";
}

TEST(PrefixCache, HitReusesPublishedBlocksAndMissStopsTheChain) {
  BlockPool pool(16, 4);
  const auto prompt = iota_tokens(10);  // 2 full blocks + 2 tokens
  BlockTable first(pool);
  EXPECT_EQ(match_prefix(pool, prompt, first), 0) << "empty cache: a miss";
  ASSERT_TRUE(first.reserve(10));
  publish_full_blocks(pool, prompt, 10, first);
  EXPECT_EQ(first.n_published, 2);
  EXPECT_TRUE(pool.is_cached(first.ids()[0]) && pool.is_cached(first.ids()[1]));
  EXPECT_FALSE(pool.is_cached(first.ids()[2])) << "the partial block is not cached";

  BlockTable second(pool);
  EXPECT_EQ(match_prefix(pool, prompt, second), 8);
  ASSERT_EQ(second.n_blocks(), 2);
  EXPECT_EQ(second.ids()[0], first.ids()[0]);
  EXPECT_EQ(pool.ref_count(first.ids()[0]), 2) << "shared, not copied";

  // Same second block, different first block: the chained hash misses at block 0.
  auto other = prompt;
  other[0] = 99;
  BlockTable third(pool);
  EXPECT_EQ(match_prefix(pool, other, third), 0);
  // Different second block: only the first block hits.
  auto tail = prompt;
  tail[5] = 77;
  BlockTable fourth(pool);
  EXPECT_EQ(match_prefix(pool, tail, fourth), 4);
}

TEST(PrefixCache, WholePromptCachedStillLeavesOneTokenToCompute) {
  BlockPool pool(8, 4);
  const auto prompt = iota_tokens(8);  // exactly two blocks
  BlockTable a(pool);
  ASSERT_TRUE(a.reserve(8));
  publish_full_blocks(pool, prompt, 8, a);
  BlockTable b(pool);
  EXPECT_EQ(match_prefix(pool, prompt, b), 4) << "the last block is computed again for its logits";
}

TEST(PrefixCache, FreedCachedBlocksAreFoundUntilEvictedInLruOrder) {
  BlockPool pool(4, 2);
  auto cache = [&](std::vector<int32_t> tokens) {
    BlockTable t(pool);
    EXPECT_TRUE(t.reserve(int(tokens.size())));
    publish_full_blocks(pool, tokens, int(tokens.size()), t);
    return t.ids()[0];
  };
  const BlockId a = cache({1, 2});  // freed first: least recently used
  const BlockId b = cache({3, 4});
  EXPECT_EQ(pool.n_free(), 4);
  EXPECT_EQ(pool.stats().n_cached_free, 2);
  // Uncached free blocks are handed out before cached ones.
  BlockTable user(pool);
  ASSERT_TRUE(user.reserve(4));
  EXPECT_TRUE(std::find(user.ids().begin(), user.ids().end(), a) == user.ids().end());
  EXPECT_TRUE(std::find(user.ids().begin(), user.ids().end(), b) == user.ids().end());
  // The next allocation evicts the least recently used cached block: a.
  ASSERT_TRUE(user.reserve(6));
  EXPECT_EQ(user.ids().back(), a);
  EXPECT_FALSE(pool.is_cached(a));
  BlockTable probe(pool);
  EXPECT_EQ(match_prefix(pool, std::vector<int32_t>{1, 2, 0}, probe), 0) << "a was evicted";
  EXPECT_EQ(match_prefix(pool, std::vector<int32_t>{3, 4, 0}, probe), 2) << "b is still cached";
  EXPECT_EQ(pool.stats().evictions, 1u);
}

TEST(PrefixCache, HittingAFreeCachedBlockTakesItOffTheFreeList) {
  BlockPool pool(2, 2);
  {
    BlockTable t(pool);
    ASSERT_TRUE(t.reserve(2));
    publish_full_blocks(pool, std::vector<int32_t>{5, 6}, 2, t);
  }
  BlockTable hit(pool);
  EXPECT_EQ(match_prefix(pool, std::vector<int32_t>{5, 6, 7}, hit), 2);
  EXPECT_EQ(pool.n_free(), 1);
  BlockTable other(pool);
  EXPECT_TRUE(other.reserve(2));
  EXPECT_FALSE(other.reserve(4)) << "the hit block is not handed out twice";
}

TEST(PrefixCache, HashCollisionIsNotAHit) {
  // Same hash key, different contents: find() checks the tokens and the parent.
  BlockPool pool(2, 2);
  BlockTable t(pool);
  ASSERT_TRUE(t.reserve(2));
  const std::vector<int32_t> tokens = {1, 2};
  const BlockHash h = hash_block(0, tokens);
  pool.publish(t.ids()[0], h, 0, tokens);
  EXPECT_TRUE(pool.find(h, 0, tokens).has_value());
  EXPECT_FALSE(pool.find(h, 0, std::vector<int32_t>{1, 3}).has_value());
  EXPECT_FALSE(pool.find(h, 42, tokens).has_value());
}

TEST(BlockPool, RandomChurnNeverLeaks) {
  std::mt19937 rng(std::random_device{}());
  BlockPool pool(32, 4);
  std::vector<BlockTable> tables;
  for (int step = 0; step < 2000; ++step) {
    const int op = int(rng() % 3);
    if (op == 0 || tables.empty()) {
      BlockTable t(pool);
      std::vector<int32_t> tokens(size_t(rng() % 20 + 1));
      for (auto& x : tokens) x = int32_t(rng() % 3);  // few distinct tokens: many prefix hits
      const int hit = match_prefix(pool, tokens, t);
      EXPECT_EQ(hit % 4, 0);
      if (t.reserve(int(tokens.size()))) {
        publish_full_blocks(pool, tokens, int(tokens.size()), t);
        tables.push_back(std::move(t));
      }
    } else {
      tables.erase(tables.begin() + std::ptrdiff_t(rng() % tables.size()));
    }
    int held = 0;
    for (const auto& t : tables) held += t.n_blocks();
    EXPECT_LE(pool.n_blocks() - pool.n_free(), held);
  }
  tables.clear();
  EXPECT_EQ(pool.n_free(), pool.n_blocks());
}

}  // namespace
}  // namespace ember::kv
