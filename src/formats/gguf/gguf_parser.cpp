// GGUF parser: one pass over the image with a bounds-checked cursor. Every count, length,
// dimension and offset is validated before it is used; see docs/gguf.md for the rules.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>

#include "formats/gguf/gguf.h"

namespace ember::gguf {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;         // arrays may nest this deep, no deeper
constexpr uint32_t kLastValueType = 12;   // f64
constexpr std::string_view kAlignmentKey = "general.alignment";
// Smallest possible encodings, used to reject counts that cannot fit in the file.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;              // key length, 1-byte key, type, u8 value
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name length, 1-byte name, n_dims, dim, type, offset

uint64_t min_value_bytes(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    case ValueType::string: return 8;  // u64 length
    case ValueType::array: return 12;  // u32 element type + u64 count
  }
  return 1;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = uint8_t(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    if (s.size() - i <= size_t(n)) return false;
    for (int k = 1; k <= n; ++k) {
      const auto cc = uint8_t(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += size_t(n) + 1;
  }
  return true;
}

// A name from the file, quoted for an error message: control bytes escaped, long names cut.
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 96;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = uint8_t(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

}  // namespace

class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, File& file)
      : bytes_(bytes), file_(file), element_budget_(bytes.size()) {}

  Status run() {
    uint64_t n_tensors = 0, n_kv = 0;
    EMBER_RETURN_IF_ERROR(parse_header(n_tensors, n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) EMBER_RETURN_IF_ERROR(parse_kv(i));
    file_.tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) EMBER_RETURN_IF_ERROR(parse_tensor_info(i));
    return place_tensors();
  }

 private:
  template <typename... Args>
  Status invalid(fmt::format_string<Args...> format, Args&&... args) const {
    return Status(ErrorKind::invalid_file,
                  fmt::format("{}: {}", file_.name_, fmt::format(format, std::forward<Args>(args)...)));
  }

  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  Status read(T& out, std::string_view what) {
    if (remaining() < sizeof(T))
      return invalid("truncated file: {} of {} needs {} bytes at offset {}, file size is {}", what, context_,
                     sizeof(T), pos_, bytes_.size());
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return {};
  }

  Status read_string(std::string& out, std::string_view what) {
    uint64_t len = 0;
    EMBER_RETURN_IF_ERROR(read(len, what));
    if (len > remaining())
      return invalid("{} of {} has length {} but only {} bytes remain (offset {}, file size {})", what, context_,
                     len, remaining(), pos_, bytes_.size());
    out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(len));
    pos_ += size_t(len);
    return {};
  }

  Status read_value_type(ValueType& out, std::string_view what) {
    uint32_t raw = 0;
    EMBER_RETURN_IF_ERROR(read(raw, what));
    if (raw > kLastValueType) return invalid("{} has unknown {} {}", context_, what, raw);
    out = ValueType(raw);
    return {};
  }

  // Reads one little-endian scalar stored as `Stored` and keeps it in v as `Held`.
  template <typename Stored, typename Held>
  Expected<Value> scalar(Value& v, std::string_view what) {
    Stored x{};
    EMBER_RETURN_IF_ERROR(read(x, what));
    v.data = Held(x);
    return std::move(v);
  }

  Status parse_header(uint64_t& n_tensors, uint64_t& n_kv);
  Status parse_kv(uint64_t index);
  Status check_alignment(const Value& value);
  Expected<Value> parse_value(ValueType type, int depth);
  Status parse_array(Array& out, int depth);
  Status parse_tensor_info(uint64_t index);
  Status parse_dims(TensorInfo& t);
  Status compute_size(TensorInfo& t, const quant::TypeTraits& traits);
  Status place_tensors();

  std::span<const uint8_t> bytes_;
  File& file_;
  size_t pos_ = 0;
  std::string context_ = "the header";  // what is being read, for error messages
  uint64_t element_budget_;             // metadata values left before we refuse to allocate more
};

Status Parser::parse_header(uint64_t& n_tensors, uint64_t& n_kv) {
  uint32_t magic = 0;
  if (bytes_.size() < 4)
    return invalid("bad magic: file is {} bytes, too short to hold the 'GGUF' magic", bytes_.size());
  EMBER_RETURN_IF_ERROR(read(magic, "magic"));
  if (magic != kMagic)
    return invalid("bad magic: bytes {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 46 ('GGUF')", bytes_[0],
                   bytes_[1], bytes_[2], bytes_[3]);
  EMBER_RETURN_IF_ERROR(read(file_.version_, "version"));
  const uint32_t v = file_.version_;
  if (v != 2 && v != 3) {
    const bool swapped = __builtin_bswap32(v) == 2 || __builtin_bswap32(v) == 3;
    return invalid("unsupported GGUF version {}{}; ember reads versions 2 and 3", v,
                   swapped ? " (a big-endian file?)" : "");
  }
  EMBER_RETURN_IF_ERROR(read(n_tensors, "tensor count"));
  EMBER_RETURN_IF_ERROR(read(n_kv, "metadata count"));
  const uint64_t rest = remaining();
  if (n_kv > rest / kMinKvBytes)
    return invalid("metadata count {} cannot fit in the remaining {} bytes", n_kv, rest);
  if (n_tensors > (rest - n_kv * kMinKvBytes) / kMinTensorBytes)
    return invalid("tensor count {} cannot fit in the remaining {} bytes", n_tensors, rest);
  return {};
}

Status Parser::parse_kv(uint64_t index) {
  context_ = fmt::format("metadata pair #{}", index);
  std::string key;
  EMBER_RETURN_IF_ERROR(read_string(key, "key"));
  if (key.empty()) return invalid("{} has an empty key", context_);
  if (!valid_utf8(key)) return invalid("{} key {} is not valid UTF-8", context_, quoted(key));
  context_ = fmt::format("metadata key {}", quoted(key));
  if (file_.kv_index_.count(key) != 0) return invalid("duplicate metadata key {}", quoted(key));
  ValueType type{};
  EMBER_RETURN_IF_ERROR(read_value_type(type, "value type"));
  auto value = parse_value(type, 0);
  if (!value) return value.status();
  if (key == kAlignmentKey) EMBER_RETURN_IF_ERROR(check_alignment(*value));
  file_.kv_index_.emplace(key, file_.kv_.size());
  file_.kv_.emplace_back(std::move(key), std::move(*value));
  return {};
}

Status Parser::check_alignment(const Value& value) {
  if (value.type != ValueType::u32)
    return invalid("{} must be a u32, not {}", context_, value_type_name(value.type));
  const uint64_t a = std::get<uint64_t>(value.data);
  if (a == 0 || !std::has_single_bit(a))
    return invalid("{} alignment {} is not a power of two", context_, a);
  file_.alignment_ = a;
  return {};
}

Expected<Value> Parser::parse_value(ValueType type, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::u8: return scalar<uint8_t, uint64_t>(v, "u8 value");
    case ValueType::u16: return scalar<uint16_t, uint64_t>(v, "u16 value");
    case ValueType::u32: return scalar<uint32_t, uint64_t>(v, "u32 value");
    case ValueType::u64: return scalar<uint64_t, uint64_t>(v, "u64 value");
    case ValueType::i8: return scalar<int8_t, int64_t>(v, "i8 value");
    case ValueType::i16: return scalar<int16_t, int64_t>(v, "i16 value");
    case ValueType::i32: return scalar<int32_t, int64_t>(v, "i32 value");
    case ValueType::i64: return scalar<int64_t, int64_t>(v, "i64 value");
    case ValueType::f32: return scalar<float, double>(v, "f32 value");
    case ValueType::f64: return scalar<double, double>(v, "f64 value");
    case ValueType::boolean: {
      uint8_t b = 0;
      EMBER_RETURN_IF_ERROR(read(b, "bool value"));
      if (b > 1) return invalid("{} has invalid bool value {} (must be 0 or 1)", context_, b);
      v.data = b == 1;
      return v;
    }
    case ValueType::string: {
      std::string s;
      EMBER_RETURN_IF_ERROR(read_string(s, "string value"));
      v.data = std::move(s);
      return v;
    }
    case ValueType::array: {
      Array a;
      EMBER_RETURN_IF_ERROR(parse_array(a, depth));
      v.data = std::move(a);
      return v;
    }
  }
  return invalid("{} has unknown value type {}", context_, uint32_t(type));
}

Status Parser::parse_array(Array& out, int depth) {
  if (depth >= kMaxArrayDepth) return invalid("{} has arrays nested deeper than {}", context_, kMaxArrayDepth);
  const char* what = depth == 0 ? "array element type" : "nested array element type";
  EMBER_RETURN_IF_ERROR(read_value_type(out.elem_type, what));
  uint64_t count = 0;
  EMBER_RETURN_IF_ERROR(read(count, "array count"));
  if (count > remaining() / min_value_bytes(out.elem_type))
    return invalid("{} array of {} has count {} but only {} bytes remain", context_,
                   value_type_name(out.elem_type), count, remaining());
  // Each element takes at least one byte of the file, so a valid file never exceeds this budget;
  // it caps what a hostile file can make us allocate at sizeof(Value) per file byte.
  if (count > element_budget_)
    return invalid("{} array count {} exceeds the metadata element budget ({} left)", context_, count,
                   element_budget_);
  element_budget_ -= count;
  out.items.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) {
    auto item = parse_value(out.elem_type, depth + 1);
    if (!item) return item.status();
    out.items.push_back(std::move(*item));
  }
  return {};
}

Status Parser::parse_tensor_info(uint64_t index) {
  context_ = fmt::format("tensor #{}", index);
  TensorInfo t;
  EMBER_RETURN_IF_ERROR(read_string(t.name, "name"));
  if (t.name.empty()) return invalid("{} has an empty name", context_);
  context_ = fmt::format("tensor {}", quoted(t.name));
  if (file_.tensor_index_.count(t.name) != 0) return invalid("duplicate tensor name {}", quoted(t.name));
  EMBER_RETURN_IF_ERROR(parse_dims(t));
  uint32_t type_id = 0;
  EMBER_RETURN_IF_ERROR(read(type_id, "type"));
  const auto traits = quant::type_traits(type_id);
  if (!traits) return invalid("{} has unknown tensor type id {}", context_, type_id);
  t.type = quant::Type(type_id);
  EMBER_RETURN_IF_ERROR(read(t.offset, "offset"));
  EMBER_RETURN_IF_ERROR(compute_size(t, *traits));
  if (t.offset % file_.alignment_ != 0)
    return invalid("{} offset {} is not a multiple of the alignment {}", context_, t.offset, file_.alignment_);
  file_.tensor_index_.emplace(t.name, file_.tensors_.size());
  file_.tensors_.push_back(std::move(t));
  return {};
}

Status Parser::parse_dims(TensorInfo& t) {
  uint32_t n_dims = 0;
  EMBER_RETURN_IF_ERROR(read(n_dims, "n_dims"));
  if (n_dims == 0 || n_dims > uint32_t(kMaxDims))
    return invalid("{} has n_dims {} (must be 1..{})", context_, n_dims, kMaxDims);
  t.n_dims = int(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t raw = 0;
    EMBER_RETURN_IF_ERROR(read(raw, "dimension"));
    const auto dim = int64_t(raw);  // values >= 2^63 are negative
    if (dim <= 0) return invalid("{} has dimension ne[{}] = {} (must be positive)", context_, d, dim);
    t.ne[d] = dim;
  }
  return {};
}

Status Parser::compute_size(TensorInfo& t, const quant::TypeTraits& traits) {
  int64_t n = 1;
  for (int d = 0; d < t.n_dims; ++d)
    if (__builtin_mul_overflow(n, t.ne[d], &n))
      return invalid("{} element count overflows: shape [{}, {}, {}, {}]", context_, t.ne[0], t.ne[1], t.ne[2],
                     t.ne[3]);
  if (t.ne[0] % traits.block_size != 0)
    return invalid("{} ne[0] = {} is not a multiple of the {} block size {}", context_, t.ne[0], traits.name,
                   traits.block_size);
  int64_t n_bytes = 0;
  if (__builtin_mul_overflow(n / traits.block_size, traits.block_bytes, &n_bytes))
    return invalid("{} byte size overflows: {} elements of {}", context_, n, traits.name);
  t.n_elements = n;
  t.n_bytes = uint64_t(n_bytes);
  return {};
}

Status Parser::place_tensors() {
  context_ = "the data section";
  const uint64_t align = file_.alignment_;
  const uint64_t data_offset = (uint64_t(pos_) + align - 1) / align * align;  // pos_ < 2^63, align <= 2^31
  const uint64_t size = bytes_.size();
  if (data_offset > size) {
    // A file without tensors (e.g. vocabulary only) may end right after the tensor infos.
    if (!file_.tensors_.empty())
      return invalid("data section starts at {} (alignment {}), past the end of the file ({} bytes)", data_offset,
                     align, size);
    file_.data_offset_ = size;
    return {};
  }
  file_.data_offset_ = data_offset;
  for (TensorInfo& t : file_.tensors_) {
    if (t.offset > size - data_offset || t.n_bytes > size - data_offset - t.offset)
      return invalid("tensor {} data [{}, +{}) past the data section start {} runs past the end of the file ({} bytes)",
                     quoted(t.name), t.offset, t.n_bytes, data_offset, size);
    t.data = bytes_.data() + data_offset + t.offset;
  }
  std::vector<size_t> order(file_.tensors_.size());
  std::iota(order.begin(), order.end(), size_t(0));
  const auto& ts = file_.tensors_;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ts[a].offset < ts[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& prev = ts[order[i - 1]];
    const TensorInfo& cur = ts[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset)  // both are within the file: no overflow
      return invalid("tensor {} data [{}, {}) overlaps tensor {} data [{}, {})", quoted(cur.name), cur.offset,
                     cur.offset + cur.n_bytes, quoted(prev.name), prev.offset, prev.offset + prev.n_bytes);
  }
  return {};
}

Expected<File> File::parse(std::span<const uint8_t> bytes, std::string name) {
  File file;
  file.name_ = std::move(name);
  file.bytes_ = bytes;
  Parser parser(bytes, file);
  EMBER_RETURN_IF_ERROR(parser.run());
  return file;
}

}  // namespace ember::gguf
