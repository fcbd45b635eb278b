// The numbers of the paged KV cache: per layer, keys and values of every block as f32,
// [n_blocks][block_size][kv_width(layer)]. Allocated (and touched) once, so the
// process's memory does not grow while it serves. Block ids come from BlockPool.
#pragma once
#include <cstddef>
#include <vector>

#include "core/status.h"

namespace ember::kv {

class KvStorage {
 public:
  // kv_widths[il] = n_kv_heads * head_dim of layer il.
  static Expected<KvStorage> create(const std::vector<int>& kv_widths, int n_blocks, int block_size);
  // Bytes one cached token takes over all layers (keys and values).
  static size_t bytes_per_token(const std::vector<int>& kv_widths);

  int n_layers() const { return int(k_.size()); }
  int n_blocks() const { return n_blocks_; }
  int block_size() const { return block_size_; }
  float* k(int il) { return k_[size_t(il)].data(); }
  float* v(int il) { return v_[size_t(il)].data(); }
  size_t n_bytes() const;

 private:
  int n_blocks_ = 0, block_size_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace ember::kv
