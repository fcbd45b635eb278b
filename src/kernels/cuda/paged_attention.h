// Attention over the paged f16 KV cache for a batch of tokens from many sequences, each at
// its own position (docs/kv.md). CPU twin: cpu::paged_attention (kernels/cpu/paged_attention.h).
//
// Keys are cut into splits of kPagedSplitKeys aligned to absolute positions. A block takes
// a tile of consecutive query tokens of one sequence (all q heads of one kv head) and one
// split, walks its keys in tiles of 32 through shared memory with an fp32 online softmax,
// and writes per (token, head, split) partials; a combine launch merges a token's splits
// in split order. Every (token, head) result therefore depends only on its query, its
// position and its sequence's keys: decode and chunked prefill share the arithmetic, and
// a token's output is the same bits alone or in any batch.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace ember::cuda {

constexpr int kPagedSplitKeys = 512;  // keys per split
constexpr int kPagedTileRows = 32;    // most (token, q head) rows one block owns

// One block's work: query tokens [row0, row0 + n_rows) of one sequence, keys of `split`.
struct PagedWork {
  int32_t row0 = 0, n_rows = 0, split = 0, pad = 0;
};

// Splits a context of n_ctx keys needs (the partials workspace is sized by it).
inline int paged_max_splits(int n_ctx) { return (n_ctx + kPagedSplitKeys - 1) / kPagedSplitKeys; }
// Query tokens per block so that tokens x group (q heads per kv head) rows fit a block.
inline int paged_tokens_per_tile(int group) { return group >= kPagedTileRows ? 1 : kPagedTileRows / group; }
// Floats of the partials workspace: [n_tokens][n_heads][max_splits][head_dim + 2].
inline size_t paged_attention_workspace(int n_tokens, int n_heads, int head_dim, int max_splits) {
  return size_t(n_tokens) * size_t(n_heads) * size_t(max_splits) * size_t(head_dim + 2);
}

// The plan (once per step, shared by every layer): host positions and sequence index of
// each token (a sequence's tokens are consecutive with increasing positions) -> work items.
void plan_paged_work(const int32_t* positions, const int32_t* seq_of, int n_tokens, int tokens_per_tile,
                     std::vector<PagedWork>& work);

// k and v rows of this step's tokens into their cache slots, rounded to f16.
struct PagedKvStoreParams {
  const float* k = nullptr;       // [n_tokens][kv_width]
  const float* v = nullptr;       // [n_tokens][kv_width]
  const int64_t* slots = nullptr; // device [n_tokens]: block * block_size + offset
  __half* k_pages = nullptr;      // [n_blocks * block_size][kv_width]
  __half* v_pages = nullptr;
  int n_tokens = 0, kv_width = 0;  // kv_width even
};
Status paged_kv_store(const PagedKvStoreParams& p, cudaStream_t stream);

struct PagedAttentionParams {
  int n_tokens = 0;
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;  // head_dim even, <= 256
  int window = 0;                                 // sliding window; 0 = none
  float scale = 1.0f, softcap = 0.0f;
  int block_size = 0;
  const float* q = nullptr;               // [n_tokens][n_heads * head_dim]
  const int32_t* positions = nullptr;     // device [n_tokens]
  const int32_t* seq_of = nullptr;        // device [n_tokens]
  const int32_t* table_start = nullptr;   // device [n_seqs]
  const int32_t* block_tables = nullptr;  // device
  const __half* k = nullptr;              // [n_blocks][block_size][n_kv_heads * head_dim]
  const __half* v = nullptr;
  float* out = nullptr;                   // [n_tokens][n_heads * head_dim]
  const PagedWork* work = nullptr;        // device [n_work], from plan_paged_work
  int n_work = 0;
  float* partials = nullptr;              // paged_attention_workspace floats
  int max_splits = 0;                     // >= the split count of every position in the batch
};
Status paged_attention(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace ember::cuda
