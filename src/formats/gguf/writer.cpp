// GGUF writer: serialisation of metadata values and tensor infos, and streamed data.
#include "formats/gguf/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/check.h"

namespace ember::gguf {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

namespace val {
Value u8(uint8_t v) { return {ValueType::u8, uint64_t(v)}; }
Value i8(int8_t v) { return {ValueType::i8, int64_t(v)}; }
Value u16(uint16_t v) { return {ValueType::u16, uint64_t(v)}; }
Value i16(int16_t v) { return {ValueType::i16, int64_t(v)}; }
Value u32(uint32_t v) { return {ValueType::u32, uint64_t(v)}; }
Value i32(int32_t v) { return {ValueType::i32, int64_t(v)}; }
Value u64(uint64_t v) { return {ValueType::u64, v}; }
Value i64(int64_t v) { return {ValueType::i64, v}; }
Value f32(float v) { return {ValueType::f32, double(v)}; }
Value f64(double v) { return {ValueType::f64, v}; }
Value boolean(bool v) { return {ValueType::boolean, v}; }
Value string(std::string v) { return {ValueType::string, std::move(v)}; }
Value array(ValueType elem, std::vector<Value> items) {
  return {ValueType::array, Array{elem, std::move(items)}};
}
Value strings(const std::vector<std::string>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(string(s));
  return array(ValueType::string, std::move(v));
}
Value i32s(const std::vector<int32_t>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (int32_t x : items) v.push_back(i32(x));
  return array(ValueType::i32, std::move(v));
}
Value f32s(const std::vector<float>& items) {
  std::vector<Value> v;
  v.reserve(items.size());
  for (float x : items) v.push_back(f32(x));
  return array(ValueType::f32, std::move(v));
}
}  // namespace val

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

class Out {
 public:
  explicit Out(std::vector<uint8_t>& b) : b_(b) {}
  template <typename T>
  void pod(T v) {
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &v, sizeof(T));
  }
  void str(const std::string& s) {
    pod(uint64_t(s.size()));
    b_.insert(b_.end(), s.begin(), s.end());
  }

 private:
  std::vector<uint8_t>& b_;
};

uint64_t as_u64(const Value& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.data)) return uint64_t(*i);
  if (const auto* d = std::get_if<double>(&v.data)) return uint64_t(*d);
  if (const auto* b = std::get_if<bool>(&v.data)) return *b ? 1 : 0;
  return 0;
}

double as_f64(const Value& v) {
  if (const auto* d = std::get_if<double>(&v.data)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v.data)) return double(*i);
  return double(as_u64(v));
}

// Checks that the variant can be written as the value's type (recursively for arrays).
Status check_value(const Value& v, const std::string& key) {
  const bool ok = [&] {
    switch (v.type) {
      case ValueType::string: return std::holds_alternative<std::string>(v.data);
      case ValueType::array: return std::holds_alternative<Array>(v.data);
      case ValueType::boolean: return std::holds_alternative<bool>(v.data);
      default: return !std::holds_alternative<std::string>(v.data) && !std::holds_alternative<Array>(v.data);
    }
  }();
  if (!ok) return make_error(ErrorKind::invalid_argument, "gguf writer: metadata '{}': value does not match type {}",
                             key, value_type_name(v.type));
  if (const Array* a = v.as_array()) {
    for (const Value& item : a->items) {
      if (item.type != a->elem_type)
        return make_error(ErrorKind::invalid_argument, "gguf writer: metadata '{}': array of {} holds a {}", key,
                          value_type_name(a->elem_type), value_type_name(item.type));
      EMBER_RETURN_IF_ERROR(check_value(item, key));
    }
  }
  return {};
}

void write_value_body(Out& out, const Value& v) {
  switch (v.type) {
    case ValueType::u8: out.pod(uint8_t(as_u64(v))); break;
    case ValueType::i8: out.pod(int8_t(as_u64(v))); break;
    case ValueType::u16: out.pod(uint16_t(as_u64(v))); break;
    case ValueType::i16: out.pod(int16_t(as_u64(v))); break;
    case ValueType::u32: out.pod(uint32_t(as_u64(v))); break;
    case ValueType::i32: out.pod(int32_t(as_u64(v))); break;
    case ValueType::u64: out.pod(as_u64(v)); break;
    case ValueType::i64: out.pod(int64_t(as_u64(v))); break;
    case ValueType::f32: out.pod(float(as_f64(v))); break;
    case ValueType::f64: out.pod(as_f64(v)); break;
    case ValueType::boolean: out.pod(uint8_t(as_u64(v) != 0)); break;
    case ValueType::string: out.str(*v.as_string()); break;
    case ValueType::array: {
      const Array& a = *v.as_array();
      out.pod(uint32_t(a.elem_type));
      out.pod(uint64_t(a.items.size()));
      for (const Value& item : a.items) write_value_body(out, item);
      break;
    }
  }
}

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  EMBER_CHECK(alignment > 0 && std::has_single_bit(alignment));
  if (alignment != 32) kv_.emplace_back("general.alignment", val::u32(alignment));
}

Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
}

Status Writer::add(std::string key, Value value) {
  for (const auto& [k, v] : kv_)
    if (k == key) return make_error(ErrorKind::invalid_argument, "gguf writer: metadata key '{}' added twice", key);
  EMBER_RETURN_IF_ERROR(check_value(value, key));
  kv_.emplace_back(std::move(key), std::move(value));
  return {};
}

Status Writer::add_tensor(std::string name, quant::Type type, std::vector<int64_t> ne) {
  if (ne.empty() || ne.size() > 4)
    return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' has {} dims (1..4)", name, ne.size());
  int64_t rows = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] <= 0) return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' dim {} is {}", name, i, ne[i]);
    if (i > 0) {
      if (rows > std::numeric_limits<int64_t>::max() / ne[i])
        return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' is too large", name);
      rows *= ne[i];
    }
  }
  const auto rb = quant::row_bytes(type, ne[0]);
  if (!rb) return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}': {} elements per row is not a "
                             "multiple of the {} block", name, ne[0], quant::type_name(type));
  if (*rb > 0 && rows > std::numeric_limits<int64_t>::max() / *rb)
    return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' is too large", name);
  for (const auto& t : tensors_)
    if (t.name == name) return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' added twice", name);
  PlannedTensor t{std::move(name), type, std::move(ne), align_up(data_bytes_, alignment_), uint64_t(*rb * rows)};
  data_bytes_ = t.offset + t.n_bytes;
  tensors_.push_back(std::move(t));
  return {};
}

std::vector<uint8_t> Writer::header() const {
  std::vector<uint8_t> bytes;
  Out out(bytes);
  out.pod(kMagic);
  out.pod(kVersion);
  out.pod(uint64_t(tensors_.size()));
  out.pod(uint64_t(kv_.size()));
  for (const auto& [key, value] : kv_) {
    out.str(key);
    out.pod(uint32_t(value.type));
    write_value_body(out, value);
  }
  for (const PlannedTensor& t : tensors_) {
    out.str(t.name);
    out.pod(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) out.pod(uint64_t(d));
    out.pod(uint32_t(t.type));
    out.pod(t.offset);
  }
  bytes.resize(size_t(align_up(bytes.size(), alignment_)), 0);
  return bytes;
}

uint64_t Writer::data_offset() const { return header().size(); }

uint64_t Writer::file_size() const { return data_offset() + align_up(data_bytes_, alignment_); }

Status Writer::create(const std::string& path) {
  if (fd_ >= 0) return make_error(ErrorKind::invalid_argument, "gguf writer: {} is already open", path_);
  const std::vector<uint8_t> head = header();
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) return make_error(ErrorKind::not_found, "{}: cannot create: {}", path, std::strerror(errno));
  path_ = path;
  const uint64_t total = head.size() + align_up(data_bytes_, alignment_);
  if (::ftruncate(fd_, off_t(total)) != 0)
    return make_error(ErrorKind::internal, "{}: cannot size to {} bytes: {}", path, total, std::strerror(errno));
  size_t done = 0;
  while (done < head.size()) {
    const ssize_t n = ::pwrite(fd_, head.data() + done, head.size() - done, off_t(done));
    if (n <= 0) return make_error(ErrorKind::internal, "{}: write failed: {}", path, std::strerror(errno));
    done += size_t(n);
  }
  header_size_ = head.size();
  return {};
}

Status Writer::write_tensor(size_t index, std::span<const uint8_t> bytes) {
  if (fd_ < 0) return make_error(ErrorKind::invalid_argument, "gguf writer: write_tensor before create");
  if (index >= tensors_.size())
    return make_error(ErrorKind::invalid_argument, "gguf writer: tensor index {} of {}", index, tensors_.size());
  const PlannedTensor& t = tensors_[index];
  if (bytes.size() != t.n_bytes)
    return make_error(ErrorKind::invalid_argument, "gguf writer: tensor '{}' has {} bytes, expected {}", t.name,
                      bytes.size(), t.n_bytes);
  const uint64_t at = header_size_ + t.offset;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, off_t(at + done));
    if (n <= 0) return make_error(ErrorKind::internal, "{}: write failed: {}", path_, std::strerror(errno));
    done += size_t(n);
  }
  return {};
}

Status Writer::finish() {
  if (fd_ < 0) return {};
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return make_error(ErrorKind::internal, "{}: close failed: {}", path_, std::strerror(errno));
  return {};
}

}  // namespace ember::gguf
