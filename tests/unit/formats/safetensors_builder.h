// A small safetensors writer for tests: valid and deliberately malformed files in memory,
// written from the format description (8-byte little-endian header length, JSON header,
// data region), independently of ember's reader.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace ember_test {

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  // Overrides for malformed headers: written instead of the computed offsets when set.
  std::string offsets_json;
};

inline size_t st_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  return 1;
}

// A tensor of `dtype` and `shape` whose bytes count 0, 1, 2, ...
inline StTensor st_tensor(std::string name, std::string dtype, std::vector<int64_t> shape) {
  size_t n = st_dtype_size(dtype);
  for (int64_t d : shape) n *= size_t(d);
  StTensor t{std::move(name), std::move(dtype), std::move(shape), std::vector<uint8_t>(n), ""};
  for (size_t i = 0; i < n; ++i) t.data[i] = uint8_t(i);
  return t;
}

inline StTensor st_f32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  StTensor t{std::move(name), "F32", std::move(shape), std::vector<uint8_t>(values.size() * 4), ""};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

class SafetensorsBuilder {
 public:
  std::vector<StTensor> tensors;
  std::string metadata_json;  // e.g. {"format":"pt"}; empty: no __metadata__
  std::vector<uint8_t> trailing;  // extra bytes after the data region

  // The header JSON with offsets in tensor order.
  std::string header() const {
    std::string h = "{";
    if (!metadata_json.empty()) {
      h += "\"__metadata__\":";
      h += metadata_json;
    }
    uint64_t offset = 0;
    for (const StTensor& t : tensors) {
      if (h.size() > 1) h += ',';
      h += '"';
      h += t.name;
      h += "\":{\"dtype\":\"";
      h += t.dtype;
      h += "\",\"shape\":[";
      for (size_t i = 0; i < t.shape.size(); ++i) {
        if (i) h += ',';
        h += std::to_string(t.shape[i]);
      }
      h += "],\"data_offsets\":";
      if (t.offsets_json.empty()) {
        h += '[';
        h += std::to_string(offset);
        h += ',';
        h += std::to_string(offset + t.data.size());
        h += ']';
      } else {
        h += t.offsets_json;
      }
      h += '}';
      offset += t.data.size();
    }
    h += '}';
    return h;
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> data;
    for (const StTensor& t : tensors) data.insert(data.end(), t.data.begin(), t.data.end());
    data.insert(data.end(), trailing.begin(), trailing.end());
    return raw(header(), data, true);
  }

  // Header text (padded with spaces to a multiple of 8 when `pad`) and data, as they are.
  static std::vector<uint8_t> raw(std::string header, const std::vector<uint8_t>& data, bool pad = false) {
    while (pad && header.size() % 8 != 0) header += ' ';
    return with_length(header.size(), header, data);
  }

  // Any declared header length (for length-field tests).
  static std::vector<uint8_t> with_length(uint64_t n, const std::string& header, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> out(8 + header.size() + data.size());
    for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
    if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
    if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
    return out;
  }
};

inline void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A fresh empty directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() / ("ember_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ember_test
