// The CPU BatchDecoder: CpuDecoder::forward_batch over f32 pages in host memory
// (kv::KvStorage), as BatchEngine has always run on the CPU (docs/kv.md).
#pragma once
#include <optional>

#include "core/thread_pool.h"
#include "kv/kv_storage.h"
#include "model/batch_decoder.h"
#include "model/decoder.h"

namespace ember::runtime {

class CpuBatchDecoder final : public model::BatchDecoder {
 public:
  // `spec` and `weights` must outlive the decoder.
  CpuBatchDecoder(const model::ModelSpec& spec, const model::Weights& weights, ThreadPool& pool);

  size_t kv_bytes_per_token() const override { return kv::KvStorage::bytes_per_token(widths_); }
  Status allocate_kv(int n_blocks, int block_size) override;
  Status forward_batch(const model::ForwardBatch& batch, std::vector<float>& logits) override;
  const char* device_name() const override { return "cpu"; }

 private:
  std::vector<int> widths_;  // n_kv_heads * head_dim per layer
  model::CpuDecoder decoder_;
  std::optional<kv::KvStorage> storage_;
  model::PagedKv paged_;
};

}  // namespace ember::runtime
