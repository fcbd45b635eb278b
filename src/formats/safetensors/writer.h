// safetensors writer: tensors are collected in memory, then written as one file (or as
// shards plus model.safetensors.index.json). The header is the JSON object the reader
// (safetensors.h) validates, padded with spaces so the data region starts on an 8-byte
// boundary; tensors are laid out by element size (largest first), then by name, so every
// tensor's data is aligned to its element size. Used by `ember quantize` (docs/quant.md).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/safetensors/safetensors.h"

namespace ember::safetensors {

class Writer {
 public:
  // `bytes` must hold exactly dtype_size(dtype) x product(shape) bytes; a name may appear once.
  Status add(std::string name, Dtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  size_t n_tensors() const { return tensors_.size(); }
  uint64_t n_bytes() const;  // tensor data, all shards

  // One file at `path`.
  Status write_file(const std::string& path) const;
  // Into directory `dir`: model.safetensors when everything fits in `max_shard_bytes`
  // (0 = no limit), else model-0000i-of-0000n.safetensors and model.safetensors.index.json.
  Status write_dir(const std::string& dir, uint64_t max_shard_bytes = 0) const;

 private:
  struct Entry {
    std::string name;
    Dtype dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  Status write_entries(const std::string& path, const std::vector<const Entry*>& entries) const;
  std::vector<const Entry*> layout_order() const;

  std::vector<Entry> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ember::safetensors
