// One step's work for the batched decoder (docs/kv.md): the tokens of several sequences,
// each at its own positions, with each sequence's block table in the paged KV cache.
// Built by the runtime once per step ("plan"); every layer reads it ("run").
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace ember::model {

// Where the paged keys/values live: per layer [n_blocks][block_size][n_kv_heads * head_dim]
// f32 (kv::KvStorage owns them).
struct PagedKv {
  int block_size = 0;
  int n_blocks = 0;
  std::vector<float*> k, v;  // [n_layers]
};

struct ForwardBatch {
  // Per token [n_tokens]: id, position in its sequence, index of its sequence.
  std::vector<int32_t> tokens, positions, seq_of;
  // Per sequence: where its block ids start in block_tables.
  std::vector<int32_t> table_start;
  std::vector<int32_t> block_tables;
  // Token rows whose logits are wanted, in the order they are returned.
  std::vector<int32_t> logit_rows;
  // The plan: the cache slot (block * block_size + offset) each token's key/value goes to.
  std::vector<int64_t> slots;

  int n_tokens() const { return int(tokens.size()); }
  int n_seqs() const { return int(table_start.size()); }
  void clear();
  // Appends `tokens` of one sequence at positions [pos, pos + n) with its block table
  // (which must cover them); with want_logits the last token's logits are returned.
  // Returns the sequence's index in the batch.
  int add_sequence(std::span<const int32_t> tokens, int pos, std::span<const int32_t> block_table, bool want_logits);
  // Checks every position against its block table and the pool, and fills `slots`.
  Status plan(int block_size, int n_blocks);
};

}  // namespace ember::model
