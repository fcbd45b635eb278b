#include "formats/hf/json_fields.h"

#include <cmath>
#include <filesystem>

#include "core/mapped_file.h"

namespace ember::hf {

using json = nlohmann::json;

std::string json_summary(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

Expected<json> parse_json_text(std::string_view text, const std::string& name) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e999
    return make_error(ErrorKind::invalid_file, "{}: not valid JSON: {}", name, e.what());
  }
}

Expected<json> read_json_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return make_error(ErrorKind::not_found, "{}: file not found", path);
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorKind::io, "{}: cannot read the size: {}", path, ec.message());
  if (size > max_bytes)
    return make_error(ErrorKind::invalid_file, "{}: {} bytes is larger than the {} byte limit for a JSON file", path,
                      size, max_bytes);
  if (size == 0) return make_error(ErrorKind::invalid_file, "{}: empty file, not JSON", path);
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  return parse_json_text(std::string_view(reinterpret_cast<const char*>(mapped->data()), mapped->size()), path);
}

const json* JsonFields::find(std::string_view key) const {
  if (!obj_.is_object()) return nullptr;
  const auto it = obj_.find(key);
  return it == obj_.end() || it->is_null() ? nullptr : &*it;
}

Status JsonFields::bad(std::string_view key, std::string_view what) const {
  return make_error(ErrorKind::invalid_file, "{}: field '{}{}' {}", file_, prefix_, key, what);
}

Status JsonFields::unsupported(std::string_view key, std::string_view what) const {
  return make_error(ErrorKind::unsupported, "{}: field '{}{}' {}", file_, prefix_, key, what);
}

Expected<int64_t> JsonFields::int_key(std::string_view key, int64_t lo, int64_t hi) const {
  if (find(key) == nullptr) return bad(key, "is missing");
  return int_or(key, 0, lo, hi);
}

Expected<int64_t> JsonFields::int_or(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  const json* v = find(key);
  if (v == nullptr) return fallback;
  if (v->is_number_integer()) {
    const bool neg = v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0;
    if (neg || v->get<uint64_t>() <= uint64_t(INT64_MAX)) {
      const int64_t i = neg ? v->get<int64_t>() : int64_t(v->get<uint64_t>());
      if (i >= lo && i <= hi) return i;
    }
  }
  return bad(key, fmt::format("is {}, expected an integer in [{}, {}]", json_summary(*v), lo, hi));
}

Expected<double> JsonFields::float_or(std::string_view key, double fallback, double lo, double hi) const {
  const json* v = find(key);
  if (v == nullptr) return fallback;
  if (v->is_number()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d >= lo && d <= hi) return d;
  }
  return bad(key, fmt::format("is {}, expected a number in [{}, {}]", json_summary(*v), lo, hi));
}

Expected<bool> JsonFields::bool_or(std::string_view key, bool fallback) const {
  const json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return bad(key, fmt::format("is {}, expected true or false", json_summary(*v)));
  return v->get<bool>();
}

Expected<std::string> JsonFields::string_or(std::string_view key, std::string fallback) const {
  const json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) return bad(key, fmt::format("is {}, expected a string", json_summary(*v)));
  return v->get<std::string>();
}

}  // namespace ember::hf
