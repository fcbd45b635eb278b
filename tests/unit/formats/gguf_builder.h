// A small GGUF writer for tests: builds valid and deliberately malformed files in memory.
// It is written from the format description alone (not from ember's reader), so the tests
// check the reader against an independent encoder.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ember_test {

// GGUF metadata value type ids.
namespace vt {
constexpr uint32_t u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
                   array = 9, u64 = 10, i64 = 11, f64 = 12;
}
// ggml tensor type ids used by the tests.
namespace tt {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12;
}

// Bytes of a tensor of `n_elements` elements (a whole number of blocks) for the types above.
inline uint64_t tensor_bytes(uint32_t type, uint64_t n_elements) {
  switch (type) {
    case tt::F32: return n_elements * 4;
    case tt::F16: return n_elements * 2;
    case tt::Q4_0: return n_elements / 32 * 18;
    case tt::Q4_1: return n_elements / 32 * 20;
    case tt::Q8_0: return n_elements / 32 * 34;
    case tt::Q4_K: return n_elements / 256 * 144;
  }
  throw std::invalid_argument("gguf_builder: no size for this tensor type");
}

class GgufBuilder {
 public:
  std::vector<uint8_t> bytes;

  GgufBuilder& raw(const void* p, size_t n) {
    const size_t old_size = bytes.size();
    bytes.resize(old_size + n);
    if (n != 0) std::memcpy(bytes.data() + old_size, p, n);
    return *this;
  }
  template <typename T>
  GgufBuilder& le(T v) {  // the test hosts are little-endian, like GGUF
    return raw(&v, sizeof(v));
  }
  GgufBuilder& u8(uint8_t v) { return le(v); }
  GgufBuilder& i8(int8_t v) { return le(v); }
  GgufBuilder& u16(uint16_t v) { return le(v); }
  GgufBuilder& i16(int16_t v) { return le(v); }
  GgufBuilder& u32(uint32_t v) { return le(v); }
  GgufBuilder& i32(int32_t v) { return le(v); }
  GgufBuilder& u64(uint64_t v) { return le(v); }
  GgufBuilder& i64(int64_t v) { return le(v); }
  GgufBuilder& f32(float v) { return le(v); }
  GgufBuilder& f64(double v) { return le(v); }
  GgufBuilder& fill(size_t n, uint8_t byte) {
    bytes.insert(bytes.end(), n, byte);
    return *this;
  }
  GgufBuilder& zeros(size_t n) { return fill(n, 0); }

  // u64 length + bytes (no terminator).
  GgufBuilder& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }

  GgufBuilder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  }

  // Key and value type; the caller appends the value.
  GgufBuilder& key(std::string_view k, uint32_t value_type) { return str(k).u32(value_type); }
  GgufBuilder& kv_u32(std::string_view k, uint32_t v) { return key(k, vt::u32).u32(v); }
  GgufBuilder& kv_u64(std::string_view k, uint64_t v) { return key(k, vt::u64).u64(v); }
  GgufBuilder& kv_i32(std::string_view k, int32_t v) { return key(k, vt::i32).i32(v); }
  GgufBuilder& kv_f32(std::string_view k, float v) { return key(k, vt::f32).f32(v); }
  GgufBuilder& kv_bool(std::string_view k, bool v) { return key(k, vt::boolean).u8(v ? 1 : 0); }
  GgufBuilder& kv_string(std::string_view k, std::string_view v) { return key(k, vt::string).str(v); }
  // Element type + count; the caller appends the elements.
  GgufBuilder& array_header(uint32_t elem_type, uint64_t count) { return u32(elem_type).u64(count); }

  GgufBuilder& tensor_info(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                           uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }

  GgufBuilder& pad_to(uint64_t alignment, uint8_t byte = 0) {
    while (bytes.size() % alignment != 0) bytes.push_back(byte);
    return *this;
  }

  void patch_u32(size_t at, uint32_t v) { std::memcpy(bytes.data() + at, &v, 4); }
  void patch_u64(size_t at, uint64_t v) { std::memcpy(bytes.data() + at, &v, 8); }

  size_t size() const { return bytes.size(); }
  std::span<const uint8_t> span() const { return bytes; }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = tt::F32;
};

// A whole valid file. Data for tensor i is filled with the byte `data_byte(i)` and laid out
// in order at `alignment`; the last tensor ends exactly at the end of the file.
struct FileSpec {
  uint32_t version = 3;
  uint64_t alignment = 32;
  bool write_alignment = false;  // write general.alignment (always done when alignment != 32)
  uint64_t n_kv = 0;             // pairs written by `kv`
  std::function<void(GgufBuilder&)> kv;
  std::vector<TensorSpec> tensors;
};

struct BuiltFile {
  std::vector<uint8_t> bytes;
  uint64_t data_offset = 0;
  std::vector<uint64_t> offsets;  // relative to the data section
  std::vector<uint64_t> sizes;
  std::vector<uint64_t> n_elements;
};

inline uint8_t data_byte(size_t tensor_index) { return uint8_t(0x40 + tensor_index); }

inline BuiltFile build_file(const FileSpec& spec) {
  const bool alignment_kv = spec.write_alignment || spec.alignment != 32;
  BuiltFile out;
  uint64_t offset = 0;
  for (const TensorSpec& t : spec.tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.dims) n *= d;
    offset = (offset + spec.alignment - 1) / spec.alignment * spec.alignment;
    out.offsets.push_back(offset);
    out.sizes.push_back(tensor_bytes(t.type, n));
    out.n_elements.push_back(n);
    offset += out.sizes.back();
  }
  GgufBuilder b;
  b.header(spec.version, spec.tensors.size(), spec.n_kv + (alignment_kv ? 1 : 0));
  if (alignment_kv) b.kv_u32("general.alignment", uint32_t(spec.alignment));
  if (spec.kv) spec.kv(b);
  for (size_t i = 0; i < spec.tensors.size(); ++i)
    b.tensor_info(spec.tensors[i].name, spec.tensors[i].dims, spec.tensors[i].type, out.offsets[i]);
  b.pad_to(spec.alignment);
  out.data_offset = b.size();
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    b.zeros(out.data_offset + out.offsets[i] - b.size());
    b.fill(out.sizes[i], data_byte(i));
  }
  out.bytes = std::move(b.bytes);
  return out;
}

}  // namespace ember_test
