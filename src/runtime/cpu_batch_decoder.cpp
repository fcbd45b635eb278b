#include "runtime/cpu_batch_decoder.h"

namespace ember::runtime {

CpuBatchDecoder::CpuBatchDecoder(const model::ModelSpec& spec, const model::Weights& weights, ThreadPool& pool)
    : decoder_(spec, weights, 0, pool) {
  for (const auto& l : spec.layers) widths_.push_back(l.n_kv_heads * l.head_dim);
}

Status CpuBatchDecoder::allocate_kv(int n_blocks, int block_size) {
  if (storage_) return make_error(ErrorKind::internal, "CPU KV cache: allocated twice");
  auto storage = kv::KvStorage::create(widths_, n_blocks, block_size);
  if (!storage) return storage.status();
  storage_.emplace(std::move(*storage));
  paged_.block_size = storage_->block_size();
  paged_.n_blocks = storage_->n_blocks();
  for (int il = 0; il < storage_->n_layers(); ++il) {
    paged_.k.push_back(storage_->k(il));
    paged_.v.push_back(storage_->v(il));
  }
  return {};
}

Status CpuBatchDecoder::forward_batch(const model::ForwardBatch& batch, std::vector<float>& logits) {
  if (!storage_) return make_error(ErrorKind::internal, "CPU KV cache: not allocated");
  return decoder_.forward_batch(batch, paged_, logits);
}

}  // namespace ember::runtime
