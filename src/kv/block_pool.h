// The paged KV cache's block manager (docs/kv.md): a fixed pool of blocks of
// `block_size` tokens with reference counts, a free list in LRU order, and a prefix
// cache of full blocks keyed by chained block hashes. It knows nothing about the
// key/value numbers themselves (see kv_storage.h); it only hands out block ids.
//
// Free list order: blocks that hold no cached prefix go to the front (reused first);
// a freed block that holds a cached prefix goes to the back, so the least recently
// used cached block is evicted first. A cached block with ref_count 0 stays findable
// until it is handed out again.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace ember::kv {

using BlockId = int32_t;
using BlockHash = uint64_t;

// Hash of one full block chained to the hash of the block before it (0 for the first).
BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens);

struct PoolStats {
  int n_blocks = 0;
  int n_used = 0;          // ref_count > 0
  int n_cached_free = 0;   // ref_count 0 but still holding a cached prefix
  uint64_t hits = 0;       // blocks reused through the prefix cache
  uint64_t evictions = 0;  // cached blocks handed out again
};

class BlockPool {
 public:
  BlockPool(int n_blocks, int block_size);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int block_size() const { return block_size_; }
  int n_blocks() const { return int(blocks_.size()); }
  int n_free() const { return n_free_; }  // free blocks, cached ones included
  PoolStats stats() const;

  // A free block with ref_count 1, or nullopt when none is free. Evicts the block's
  // cached prefix, if any.
  std::optional<BlockId> allocate();
  // Drops one reference; at 0 the block joins the free list (see above).
  void release(BlockId id);
  // Takes one more reference (a prefix-cache hit); a free cached block leaves the free list.
  void retain(BlockId id);

  // The cached block whose hash, parent hash and tokens are these, if any.
  std::optional<BlockId> find(BlockHash hash, BlockHash parent, std::span<const int32_t> tokens) const;
  // Records that block `id` (held, full) holds `tokens` after the prefix hashed `parent`.
  // A second block with the same contents is not recorded.
  void publish(BlockId id, BlockHash hash, BlockHash parent, std::span<const int32_t> tokens);
  int ref_count(BlockId id) const { return blocks_[size_t(id)].ref_count; }
  bool is_cached(BlockId id) const { return blocks_[size_t(id)].cached; }

 private:
  struct Block {
    int ref_count = 0;
    bool cached = false;  // in by_hash_
    BlockHash hash = 0, parent = 0;
    std::vector<int32_t> tokens;  // the contents when cached (checked on lookup)
    BlockId prev = -1, next = -1;  // free-list links while ref_count == 0
  };
  void unlink_free(BlockId id);
  void push_free_front(BlockId id);
  void push_free_back(BlockId id);
  void evict(BlockId id);

  int block_size_;
  std::vector<Block> blocks_;
  BlockId free_head_ = -1, free_tail_ = -1;
  int n_free_ = 0;
  std::unordered_map<BlockHash, BlockId> by_hash_;
  uint64_t hits_ = 0, evictions_ = 0;
};

// The blocks of one sequence, in token order. Releases them when destroyed or cleared
// (RAII), so a finished, cancelled or preempted request cannot leak blocks.
class BlockTable {
 public:
  BlockTable() = default;
  explicit BlockTable(BlockPool& pool) : pool_(&pool) {}
  ~BlockTable() { clear(); }
  BlockTable(BlockTable&& o) noexcept;
  BlockTable& operator=(BlockTable&& o) noexcept;
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  const std::vector<BlockId>& ids() const { return ids_; }
  int n_blocks() const { return int(ids_.size()); }
  int capacity_tokens() const;  // n_blocks * block_size
  // Grows until it holds `n_tokens` tokens; false (and unchanged) when the pool runs out.
  bool reserve(int n_tokens);
  // Appends a block found in the prefix cache (takes a reference to it).
  void append_cached(BlockId id);
  void clear();  // releases every block

  // Prefix-cache bookkeeping: the first `n_published` blocks are published; `last_hash`
  // is the chained hash of the last of them.
  int n_published = 0;
  BlockHash last_hash = 0;

 private:
  BlockPool* pool_ = nullptr;
  std::vector<BlockId> ids_;
};

// Looks up the longest cached prefix of `tokens` (whole blocks only) and appends those
// blocks to `table`, which must be empty. Returns the number of tokens covered.
int match_prefix(BlockPool& pool, std::span<const int32_t> tokens, BlockTable& table);
// Publishes every full block of `table` not yet published; `tokens` are the sequence's
// tokens, of which the first `n_computed` have their keys/values in the cache.
void publish_full_blocks(BlockPool& pool, std::span<const int32_t> tokens, int n_computed, BlockTable& table);

}  // namespace ember::kv
