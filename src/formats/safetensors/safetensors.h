// safetensors reader: one file, or a sharded checkpoint through model.safetensors.index.json.
// See docs/hf.md. Files are memory-mapped and validated strictly before any tensor is used:
// 8-byte little-endian header length (capped), a UTF-8 JSON object header, known dtypes,
// byte size == dtype size x product(shape) (overflow-checked), offsets that tile the data
// region exactly (sorted, contiguous, no overlap, no gap, nothing after the last tensor),
// no duplicate names. Errors are ErrorKind::invalid_file naming the file, tensor and value.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"

namespace ember::safetensors {

// Header length cap, as in the reference reader.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

enum class Dtype : uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64,
};
std::string_view dtype_name(Dtype d);
size_t dtype_size(Dtype d);  // bytes per element
std::optional<Dtype> dtype_from_name(std::string_view name);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (as stored)
  int64_t n_elements = 1;
  uint64_t offset = 0;         // relative to the data region
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping (valid while the File lives)
};

class File {
 public:
  static Expected<File> open(const std::string& path);
  // Validates an in-memory image (tests). The bytes must outlive the File.
  static Expected<File> parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  uint64_t header_bytes() const { return header_bytes_; }
  size_t file_size() const { return bytes_.size(); }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in offset order
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> mapping_;
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint64_t header_bytes_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  friend class HeaderParser;
};

// All tensors of a checkpoint: model.safetensors, or the shards named by
// model.safetensors.index.json (weight_map: tensor name -> shard file in the same folder).
class Checkpoint {
 public:
  // `path`: a directory holding model.safetensors or model.safetensors.index.json, a
  // .safetensors file, or an index .json file.
  static Expected<Checkpoint> open(const std::string& path);

  const TensorInfo* find_tensor(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> tensor_names() const;
  const std::vector<std::unique_ptr<File>>& files() const { return files_; }
  const std::string& name() const { return name_; }  // the file or index that was opened
  uint64_t n_bytes() const;                            // bytes of all files

 private:
  std::string name_;
  std::vector<std::unique_ptr<File>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> index_;
};

// Parses a model.safetensors.index.json text: tensor name -> shard file name. Shard names
// must be plain file names (no directories, no "..").
Expected<std::map<std::string, std::string>> parse_index(std::string_view text, const std::string& name);

}  // namespace ember::safetensors
