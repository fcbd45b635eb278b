#include "kv/block_pool.h"

#include <algorithm>

#include "core/check.h"

namespace ember::kv {

BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token ids, then a splitmix64 finaliser.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(uint64_t(uint32_t(t)));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

BlockPool::BlockPool(int n_blocks, int block_size) : block_size_(block_size), blocks_(size_t(std::max(n_blocks, 0))) {
  EMBER_CHECK(block_size > 0 && n_blocks >= 0);
  for (BlockId id = 0; id < BlockId(blocks_.size()); ++id) push_free_back(id);
}

PoolStats BlockPool::stats() const {
  PoolStats s;
  s.n_blocks = n_blocks();
  s.n_used = n_blocks() - n_free_;
  for (BlockId id = free_head_; id >= 0; id = blocks_[size_t(id)].next) s.n_cached_free += blocks_[size_t(id)].cached;
  s.hits = hits_;
  s.evictions = evictions_;
  return s;
}

void BlockPool::unlink_free(BlockId id) {
  Block& b = blocks_[size_t(id)];
  if (b.prev >= 0) blocks_[size_t(b.prev)].next = b.next;
  else free_head_ = b.next;
  if (b.next >= 0) blocks_[size_t(b.next)].prev = b.prev;
  else free_tail_ = b.prev;
  b.prev = b.next = -1;
  --n_free_;
}

void BlockPool::push_free_front(BlockId id) {
  Block& b = blocks_[size_t(id)];
  b.prev = -1;
  b.next = free_head_;
  if (free_head_ >= 0) blocks_[size_t(free_head_)].prev = id;
  else free_tail_ = id;
  free_head_ = id;
  ++n_free_;
}

void BlockPool::push_free_back(BlockId id) {
  Block& b = blocks_[size_t(id)];
  b.next = -1;
  b.prev = free_tail_;
  if (free_tail_ >= 0) blocks_[size_t(free_tail_)].next = id;
  else free_head_ = id;
  free_tail_ = id;
  ++n_free_;
}

void BlockPool::evict(BlockId id) {
  Block& b = blocks_[size_t(id)];
  if (!b.cached) return;
  auto it = by_hash_.find(b.hash);
  if (it != by_hash_.end() && it->second == id) by_hash_.erase(it);
  b.cached = false;
  b.tokens.clear();
  ++evictions_;
}

std::optional<BlockId> BlockPool::allocate() {
  if (free_head_ < 0) return std::nullopt;
  const BlockId id = free_head_;
  unlink_free(id);
  evict(id);
  blocks_[size_t(id)].ref_count = 1;
  return id;
}

void BlockPool::release(BlockId id) {
  Block& b = blocks_[size_t(id)];
  EMBER_CHECK(b.ref_count > 0);
  if (--b.ref_count > 0) return;
  if (b.cached) push_free_back(id);
  else push_free_front(id);
}

void BlockPool::retain(BlockId id) {
  Block& b = blocks_[size_t(id)];
  if (b.ref_count == 0) unlink_free(id);
  ++b.ref_count;
  ++hits_;
}

std::optional<BlockId> BlockPool::find(BlockHash hash, BlockHash parent, std::span<const int32_t> tokens) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const Block& b = blocks_[size_t(it->second)];
  if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens.begin(), tokens.end()))
    return std::nullopt;  // a hash collision: not the same prefix
  return it->second;
}

void BlockPool::publish(BlockId id, BlockHash hash, BlockHash parent, std::span<const int32_t> tokens) {
  Block& b = blocks_[size_t(id)];
  EMBER_CHECK(b.ref_count > 0 && int(tokens.size()) == block_size_);
  if (b.cached || by_hash_.count(hash)) return;
  by_hash_.emplace(hash, id);
  b.cached = true;
  b.hash = hash;
  b.parent = parent;
  b.tokens.assign(tokens.begin(), tokens.end());
}

BlockTable::BlockTable(BlockTable&& o) noexcept
    : n_published(o.n_published), last_hash(o.last_hash), pool_(o.pool_), ids_(std::move(o.ids_)) {
  o.ids_.clear();
  o.n_published = 0;
  o.last_hash = 0;
}

BlockTable& BlockTable::operator=(BlockTable&& o) noexcept {
  if (this == &o) return *this;
  clear();
  pool_ = o.pool_;
  ids_ = std::move(o.ids_);
  n_published = o.n_published;
  last_hash = o.last_hash;
  o.ids_.clear();
  o.n_published = 0;
  o.last_hash = 0;
  return *this;
}

int BlockTable::capacity_tokens() const { return pool_ ? n_blocks() * pool_->block_size() : 0; }

bool BlockTable::reserve(int n_tokens) {
  EMBER_CHECK(pool_ != nullptr);
  const int bs = pool_->block_size();
  const int need = (n_tokens + bs - 1) / bs - n_blocks();
  if (need <= 0) return true;
  if (need > pool_->n_free()) return false;
  for (int i = 0; i < need; ++i) ids_.push_back(*pool_->allocate());
  return true;
}

void BlockTable::append_cached(BlockId id) {
  EMBER_CHECK(pool_ != nullptr);
  pool_->retain(id);
  ids_.push_back(id);
}

void BlockTable::clear() {
  // Release the last blocks first: a prefix's tail is the least likely to be shared.
  if (pool_)
    for (auto it = ids_.rbegin(); it != ids_.rend(); ++it) pool_->release(*it);
  ids_.clear();
  n_published = 0;
  last_hash = 0;
}

int match_prefix(BlockPool& pool, std::span<const int32_t> tokens, BlockTable& table) {
  EMBER_CHECK(table.n_blocks() == 0);
  const int bs = pool.block_size();
  // At least one token is left to compute: its logits are what the request needs next.
  const int n_full = tokens.empty() ? 0 : int((tokens.size() - 1) / size_t(bs));
  BlockHash parent = 0;
  int n = 0;
  for (; n < n_full; ++n) {
    const auto block = tokens.subspan(size_t(n) * bs, size_t(bs));
    const BlockHash h = hash_block(parent, block);
    const auto id = pool.find(h, parent, block);
    if (!id) break;
    table.append_cached(*id);
    parent = h;
  }
  table.n_published = n;
  table.last_hash = parent;
  return n * bs;
}

void publish_full_blocks(BlockPool& pool, std::span<const int32_t> tokens, int n_computed, BlockTable& table) {
  const int bs = pool.block_size();
  const int n_full = std::min(n_computed / bs, table.n_blocks());
  for (int b = table.n_published; b < n_full; ++b) {
    const auto block = tokens.subspan(size_t(b) * bs, size_t(bs));
    const BlockHash h = hash_block(table.last_hash, block);
    pool.publish(table.ids()[size_t(b)], h, table.last_hash, block);
    table.last_hash = h;
    table.n_published = b + 1;
  }
}

}  // namespace ember::kv
