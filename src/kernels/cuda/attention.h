// Causal grouped-query attention over an f16 KV cache, with optional sliding window and
// score soft-capping. CPU twin: cpu::attention (kernels/cpu/ops.h), which reads an f32
// cache; scores, softmax and the weighted sum are fp32 here too.
//
//   attention_decode: few query rows (decode). Grid (splits, heads, tokens): each block
//     runs an online softmax over one slice of the keys and writes a partial result to
//     the caller's workspace; a second kernel combines the slices.
//   attention_prefill: many query rows. head_dim 64 / 128 / 256 (and 16-byte aligned
//     buffers): flash_prefill, tensor-core flash attention (flash_prefill.cu); other
//     head dims: one block per (16 query rows, head) on CUDA cores, keys in tiles of 32.
//
// head_dim must be even and at most 256; n_heads a multiple of n_kv_heads.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

constexpr int kAttentionMaxHeadDim = 256;

struct AttentionParams {
  int n_tokens = 0;          // query rows
  int64_t pos0 = 0;          // position of the first query row
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int window = 0;            // keys with q_pos - k_pos >= window are masked; 0 = none
  float scale = 1.0f;        // applied to q·k
  float softcap = 0.0f;      // tanh soft-capping of scores; 0 = off
  const float* q = nullptr;  // [n_tokens][n_heads * head_dim]
  const __half* k = nullptr;  // cache rows [0, pos0 + n_tokens) of n_kv_heads * head_dim
  const __half* v = nullptr;
  float* out = nullptr;      // [n_tokens][n_heads * head_dim]
  // Decode only: when set, pos0 is read from device memory (so a captured CUDA graph can
  // be replayed at any position) and max_splits slices are always launched.
  const int32_t* pos_dev = nullptr;
  // Decode only: [n_tokens * n_heads] ints, zero before the first call and left zero by
  // every call. When set, the last slice of each (token, head) to finish merges the
  // slices itself: one launch instead of two.
  int* counters = nullptr;
  // Decode with counters: also out quantized as quantize_q8 does (gemv.h), q [n_tokens]
  // [n_heads * head_dim] and d per 32; needs head_dim % 32 == 0.
  int8_t* out_q = nullptr;
  float* out_d = nullptr;
};

// Floats of workspace attention_decode needs.
size_t attention_decode_workspace(int n_tokens, int n_heads, int head_dim, int max_splits);
Status attention_decode(const AttentionParams& p, float* workspace, int max_splits, cudaStream_t stream);
Status attention_prefill(const AttentionParams& p, cudaStream_t stream);
// The tensor-core path on its own (tests): needs flash_prefill_supported(p).
bool flash_prefill_supported(const AttentionParams& p);
Status flash_prefill(const AttentionParams& p, cudaStream_t stream);

// Writes n_tokens rows of new keys/values (f32) into the f16 cache at rows pos0...
struct KvStoreParams {
  const float* k = nullptr;  // [n_tokens][width]
  const float* v = nullptr;
  __half* k_cache = nullptr;  // [n_ctx][width]
  __half* v_cache = nullptr;
  int64_t pos0 = 0;
  int n_tokens = 0;
  int64_t width = 0;         // n_kv_heads * head_dim
  const int32_t* pos_dev = nullptr;  // when set, pos0 is read from device memory
};
Status kv_store(const KvStoreParams& p, cudaStream_t stream);

}  // namespace ember::cuda
