// GGUF (v2, v3) reader: strict validation of a memory-mapped file. See docs/gguf.md.
// Every size, count and offset read from the file is checked before use; a malformed
// file yields an ErrorKind::invalid_file Status naming the file, the field and the value.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "quant/types.h"

namespace ember::gguf {

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type;
  std::vector<Value> items;
};

// One metadata value. Integers of every width are held as int64_t/uint64_t, floats as
// double, keeping the stored type in `type`.
struct Value {
  ValueType type = ValueType::u8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  std::optional<int64_t> as_int() const;    // any integer type that fits in int64
  std::optional<double> as_float() const;   // f32/f64 or any integer type
  std::optional<bool> as_bool() const;      // boolean only
  const std::string* as_string() const;     // string only
  const Array* as_array() const;            // array only
};

struct TensorInfo {
  std::string name;
  quant::Type type;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the contiguous dimension
  uint64_t offset = 0;                    // relative to the data section
  int64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;          // into the mapping (valid while the File lives)
};

class File {
 public:
  // Maps and validates `path`.
  static Expected<File> open(const std::string& path);
  // Validates an in-memory image (tests, fuzzing). The bytes must outlive the File.
  static Expected<File> parse(std::span<const uint8_t> bytes, std::string name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& name() const { return name_; }
  size_t file_size() const { return bytes_.size(); }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order; lookup by key.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const std::string* get_string(std::string_view key) const;
  const Array* get_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> mapping_;  // null when parsed from caller-owned bytes
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  friend class Parser;
};

}  // namespace ember::gguf
