// Causal grouped-query attention over a paged KV cache, for a batch of tokens from
// several sequences (the CPU reference twin of a paged-attention kernel). Key/value
// rows of a sequence live in fixed-size blocks named by its block table; row j of
// sequence s is row (j % block_size) of block block_tables[table_start[s] + j / block_size].
// Per (token, head) the arithmetic is exactly cpu::attention's, so a token gets the
// same output alone or in any batch.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace ember::cpu {

struct PagedAttentionParams {
  int n_tokens = 0;                      // query rows in the batch
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int window = 0;                        // sliding window; 0 = none (as AttentionParams)
  float scale = 1.0f;
  float softcap = 0.0f;
  int block_size = 0;                    // tokens per block
  const float* q = nullptr;              // [n_tokens][n_heads * head_dim]
  const int32_t* positions = nullptr;    // [n_tokens] position of each query in its sequence
  const int32_t* seq_of = nullptr;       // [n_tokens] sequence index of each query
  const int32_t* table_start = nullptr;  // [n_seqs] offset of each sequence's table in block_tables
  const int32_t* block_tables = nullptr; // block ids, each sequence's in token order
  const float* k = nullptr;              // [n_blocks][block_size][n_kv_heads * head_dim]
  const float* v = nullptr;              // same layout
  float* out = nullptr;                  // [n_tokens][n_heads * head_dim]
};

void paged_attention(const PagedAttentionParams& p, ThreadPool& pool);

}  // namespace ember::cpu
