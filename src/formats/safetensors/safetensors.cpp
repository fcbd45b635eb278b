// safetensors header validation (File) and sharded checkpoints (Checkpoint, index.json).
#include "formats/safetensors/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace ember::safetensors {
namespace {

using json = nlohmann::json;

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DtypeInfo, 16> kDtypes = {{
    {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1}, {Dtype::I8, "I8", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
    {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E8M0, "F8_E8M0", 1}, {Dtype::I16, "I16", 2},
    {Dtype::U16, "U16", 2}, {Dtype::F16, "F16", 2}, {Dtype::BF16, "BF16", 2}, {Dtype::I32, "I32", 4},
    {Dtype::U32, "U32", 4}, {Dtype::F32, "F32", 4}, {Dtype::I64, "I64", 8}, {Dtype::U64, "U64", 8},
    {Dtype::F64, "F64", 8},
}};

// Sub-byte dtypes newer writers know; named in the error rather than called unknown.
constexpr std::array<std::string_view, 3> kSubByteDtypes = {"F4", "F6_E2M3", "F6_E3M2"};

Status bad(const std::string& file, std::string_view what) {
  return make_error(ErrorKind::invalid_file, "{}: {}", file, what);
}

// A non-negative JSON integer that fits in uint64.
std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  return std::nullopt;
}

std::string short_dump(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace

std::string_view dtype_name(Dtype d) { return kDtypes[size_t(d)].name; }
size_t dtype_size(Dtype d) { return kDtypes[size_t(d)].size; }

std::optional<Dtype> dtype_from_name(std::string_view name) {
  for (const DtypeInfo& info : kDtypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}

// Parses and checks the JSON header of one file.
class HeaderParser {
 public:
  HeaderParser(File& f) : f_(f) {}

  Status run() {
    const auto bytes = f_.bytes_;
    if (bytes.size() < 8) return bad(f_.name_, fmt::format("file is {} bytes, too small for the 8-byte header length", bytes.size()));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
    if (n > kMaxHeaderBytes) return bad(f_.name_, fmt::format("header length {} exceeds the limit of {} bytes", n, kMaxHeaderBytes));
    if (n > bytes.size() - 8)
      return bad(f_.name_, fmt::format("header length {} runs past the end of the file ({} bytes)", n, bytes.size()));
    f_.header_bytes_ = n;
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), size_t(n));
    if (text.empty() || text[0] != '{') return bad(f_.name_, "header does not start with '{' (not a JSON object)");
    json header;
    EMBER_RETURN_IF_ERROR(parse_json(text, header));
    const uint64_t data_size = bytes.size() - 8 - n;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        EMBER_RETURN_IF_ERROR(read_metadata(it.value()));
        continue;
      }
      EMBER_RETURN_IF_ERROR(read_tensor(it.key(), it.value()));
    }
    EMBER_RETURN_IF_ERROR(check_layout(data_size));
    const uint8_t* data = bytes.data() + 8 + n;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      f_.tensors_[i].data = data + f_.tensors_[i].offset;
      f_.index_.emplace(f_.tensors_[i].name, i);
    }
    return {};
  }

 private:
  Status parse_json(std::string_view text, json& out) {
    // Duplicate top-level names are an error; the callback sees every key before it is stored.
    std::set<std::string> seen;
    std::string duplicate;
    const json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
          duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    };
    out = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
    if (out.is_discarded())
      return bad(f_.name_, "header is not valid UTF-8 JSON");
    if (!out.is_object()) return bad(f_.name_, "header is not a JSON object");
    if (!duplicate.empty()) return bad(f_.name_, fmt::format("tensor '{}' appears twice in the header", duplicate));
    return {};
  }

  Status read_metadata(const json& v) {
    if (!v.is_object()) return bad(f_.name_, "__metadata__ is not an object of strings");
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_string())
        return bad(f_.name_, fmt::format("__metadata__ '{}' is {}, not a string", it.key(), short_dump(it.value())));
      f_.metadata_[it.key()] = it.value().get<std::string>();
    }
    return {};
  }

  Status read_tensor(const std::string& name, const json& v) {
    const auto fail = [&](std::string_view what) { return bad(f_.name_, fmt::format("tensor '{}': {}", name, what)); };
    if (!v.is_object()) return fail("entry is not an object");
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return fail("missing string field 'dtype'");
    if (sh == v.end() || !sh->is_array()) return fail("missing array field 'shape'");
    if (off == v.end() || !off->is_array()) return fail("missing array field 'data_offsets'");
    TensorInfo t;
    t.name = name;
    const std::string dname = dt->get<std::string>();
    const auto dtype = dtype_from_name(dname);
    if (!dtype) {
      const bool sub_byte = std::find(kSubByteDtypes.begin(), kSubByteDtypes.end(), dname) != kSubByteDtypes.end();
      return fail(sub_byte ? fmt::format("dtype '{}' (sub-byte) is not supported", dname)
                           : fmt::format("unknown dtype '{}'", dname));
    }
    t.dtype = *dtype;
    uint64_t count = 1;
    for (const json& d : *sh) {
      const auto dim = as_u64(d);
      if (!dim) return fail(fmt::format("shape entry {} is not a non-negative integer", short_dump(d)));
      if (*dim > uint64_t(std::numeric_limits<int64_t>::max())) return fail(fmt::format("dimension {} is too large", *dim));
      t.shape.push_back(int64_t(*dim));
      if (*dim != 0 && count > uint64_t(std::numeric_limits<int64_t>::max()) / *dim)
        return fail(fmt::format("shape {} overflows the element count", short_dump(*sh)));
      count *= *dim;
    }
    if (off->size() != 2) return fail(fmt::format("data_offsets {} is not [begin, end]", short_dump(*off)));
    const auto begin = as_u64((*off)[0]), end = as_u64((*off)[1]);
    if (!begin || !end || *end < *begin)
      return fail(fmt::format("data_offsets {} is not [begin, end] with 0 <= begin <= end", short_dump(*off)));
    const size_t size = dtype_size(t.dtype);
    if (count > std::numeric_limits<uint64_t>::max() / size)
      return fail(fmt::format("shape {} x {} bytes overflows", short_dump(*sh), size));
    t.n_elements = int64_t(count);
    t.n_bytes = count * size;
    if (t.n_bytes != *end - *begin)
      return fail(fmt::format("data_offsets [{}, {}] hold {} bytes but dtype {} x shape {} needs {}", *begin, *end,
                              *end - *begin, dname, short_dump(*sh), t.n_bytes));
    t.offset = *begin;
    f_.tensors_.push_back(std::move(t));
    return {};
  }

  // Sorted by offset, the tensors must tile [0, data_size) with no gap and no overlap.
  Status check_layout(uint64_t data_size) {
    auto& ts = f_.tensors_;
    std::sort(ts.begin(), ts.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.offset != b.offset ? a.offset < b.offset : a.n_bytes < b.n_bytes;
    });
    uint64_t expected = 0;
    for (const TensorInfo& t : ts) {
      if (t.offset != expected)
        return bad(f_.name_, fmt::format("tensor '{}' starts at data offset {} but the previous tensor ends at {} ({})",
                                         t.name, t.offset, expected, t.offset < expected ? "overlap" : "gap"));
      expected = t.offset + t.n_bytes;
      if (expected > data_size)
        return bad(f_.name_, fmt::format("tensor '{}' ends at data offset {}, past the data region of {} bytes", t.name,
                                         expected, data_size));
    }
    if (expected != data_size)
      return bad(f_.name_, fmt::format("tensors cover {} bytes but the data region has {} (trailing bytes)", expected,
                                       data_size));
    return {};
  }

  File& f_;
};

Expected<File> File::parse(std::span<const uint8_t> bytes, std::string name) {
  File f;
  f.bytes_ = bytes;
  f.name_ = std::move(name);
  HeaderParser p(f);
  EMBER_RETURN_IF_ERROR(p.run());
  return f;
}

Expected<File> File::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  auto mapping = std::make_shared<MappedFile>(std::move(*mapped));
  auto f = parse(mapping->bytes(), path);
  if (!f) return f.status();
  f->mapping_ = std::move(mapping);
  return f;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace ember::safetensors
