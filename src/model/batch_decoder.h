// A decoder that runs a ForwardBatch (tokens of many sequences) over a paged KV cache it
// owns; BatchEngine drives one (docs/kv.md). Implementations: runtime::CpuBatchDecoder
// (CpuDecoder::forward_batch over f32 pages) and the CUDA one (model/gpu/gpu_batch_decoder.h,
// f16 pages on the device). The host BlockPool hands out the block ids; the decoder only
// stores the numbers.
#pragma once
#include <cstddef>
#include <vector>

#include "core/status.h"
#include "model/forward_batch.h"

namespace ember::model {

class BatchDecoder {
 public:
  virtual ~BatchDecoder() = default;
  // Bytes one cached token takes over all layers (keys and values).
  virtual size_t kv_bytes_per_token() const = 0;
  // The cache size to use when the user gives none; 0: the engine's default rule.
  virtual size_t default_kv_bytes(int max_seqs, int n_ctx) const {
    (void)max_seqs;
    (void)n_ctx;
    return 0;
  }
  // Allocates the cache: n_blocks blocks of block_size tokens. Called once, first.
  virtual Status allocate_kv(int n_blocks, int block_size) = 0;
  // Runs a planned batch (ForwardBatch::plan); fills `logits` with
  // [batch.logit_rows.size()][n_vocab]. A row's logits do not depend on the rest of the batch.
  virtual Status forward_batch(const ForwardBatch& batch, std::vector<float>& logits) = 0;
  // The most tokens one forward_batch may take (0: no limit).
  virtual int max_tokens() const { return 0; }
  // The most sequences one forward_batch may take (0: no limit).
  virtual int max_seqs() const { return 0; }
  // "cpu", "cuda:0": for logs.
  virtual const char* device_name() const = 0;
};

}  // namespace ember::model
