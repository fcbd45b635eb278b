// Reading Hugging Face JSON files (config.json, generation_config.json, tokenizer*.json)
// with errors that name the file, the field and the value.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ember::hf {

// Largest JSON file read (Gemma's tokenizer.json is ~33 MB).
inline constexpr size_t kMaxJsonBytes = size_t(512) << 20;

// Reads and parses a whole JSON file: not_found when missing, invalid_file when malformed.
Expected<nlohmann::json> read_json_file(const std::string& path, size_t max_bytes = kMaxJsonBytes);
// Parses JSON text already in memory; `name` names it in errors.
Expected<nlohmann::json> parse_json_text(std::string_view text, const std::string& name);

// Typed access to the fields of one JSON object. A field that is absent or null takes the
// fallback; a present field of the wrong type or out of range is an invalid_file error
// "<file>: field '<prefix><key>' ...".
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string file, std::string prefix = "")
      : obj_(object), file_(std::move(file)), prefix_(std::move(prefix)) {}

  const nlohmann::json* find(std::string_view key) const;  // null when absent or null
  bool has(std::string_view key) const { return find(key) != nullptr; }
  Expected<int64_t> int_key(std::string_view key, int64_t lo, int64_t hi) const;  // required
  Expected<int64_t> int_or(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const;
  Expected<double> float_or(std::string_view key, double fallback, double lo, double hi) const;
  Expected<bool> bool_or(std::string_view key, bool fallback) const;
  Expected<std::string> string_or(std::string_view key, std::string fallback) const;
  // An error about `key` ("<file>: field '<prefix><key>' <what>").
  Status bad(std::string_view key, std::string_view what) const;
  // The same for a well-formed value ember does not support (ErrorKind::unsupported).
  Status unsupported(std::string_view key, std::string_view what) const;
  JsonFields sub(const nlohmann::json& object, std::string_view key) const {
    return JsonFields(object, file_, prefix_ + std::string(key) + ".");
  }
  const nlohmann::json& object() const { return obj_; }
  const std::string& file() const { return file_; }

 private:
  const nlohmann::json& obj_;
  std::string file_;
  std::string prefix_;
};

// A short printable form of a JSON value for error messages.
std::string json_summary(const nlohmann::json& v);

}  // namespace ember::hf
