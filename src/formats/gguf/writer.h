// GGUF (v3) writer: metadata of every value type, tensor infos, aligned tensor data.
// The layout is planned up front (add metadata and tensors, then header()), so tensor
// data can be streamed into the file afterwards, by several threads, in any order.
// Read back with gguf::File (gguf.h); the round trip is tested in tests/unit/formats.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/gguf/gguf.h"
#include "quant/types.h"

namespace ember::gguf {

// Metadata value builders (the Value's variant holds every integer as uint64_t/int64_t
// and every float as double; `type` says how it is stored in the file).
namespace val {
Value u8(uint8_t v);
Value i8(int8_t v);
Value u16(uint16_t v);
Value i16(int16_t v);
Value u32(uint32_t v);
Value i32(int32_t v);
Value u64(uint64_t v);
Value i64(int64_t v);
Value f32(float v);
Value f64(double v);
Value boolean(bool v);
Value string(std::string v);
// An array of values that all have type `elem` (arrays may nest).
Value array(ValueType elem, std::vector<Value> items);
Value strings(const std::vector<std::string>& items);
Value i32s(const std::vector<int32_t>& items);
Value f32s(const std::vector<float>& items);
}  // namespace val

struct PlannedTensor {
  std::string name;
  quant::Type type = quant::Type::F32;
  std::vector<int64_t> ne;  // ne[0] contiguous, 1..4 dims
  uint64_t offset = 0;      // relative to the data section, aligned
  uint64_t n_bytes = 0;
};

class Writer {
 public:
  // alignment: a power of two; written as general.alignment when it is not the default 32.
  explicit Writer(uint32_t alignment = 32);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Metadata in insertion order; a key may appear once.
  Status add(std::string key, Value value);
  // Plans a tensor: its size must be a whole number of blocks along ne[0].
  Status add_tensor(std::string name, quant::Type type, std::vector<int64_t> ne);

  const std::vector<PlannedTensor>& tensors() const { return tensors_; }
  uint64_t data_offset() const;  // where the data section starts in the file
  uint64_t file_size() const;    // header + data, every tensor padded to the alignment
  // Header, metadata, tensor infos and the padding up to data_offset().
  std::vector<uint8_t> header() const;

  // Streaming to a file: create() writes the header and sizes the file; write_tensor
  // (thread-safe, any order) puts one tensor's bytes at its offset; finish() closes.
  Status create(const std::string& path);
  Status write_tensor(size_t index, std::span<const uint8_t> bytes);
  Status finish();

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PlannedTensor> tensors_;
  uint64_t data_bytes_ = 0;
  uint64_t header_size_ = 0;  // set by create()
  std::string path_;
  int fd_ = -1;
};

}  // namespace ember::gguf
