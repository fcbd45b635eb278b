// Python str semantics on UTF-8 bytes: code points, whitespace, case (ASCII case mapping).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ember::chat::pystr {

// Code points of s; an invalid byte becomes 0x110000 + byte so encode() restores it.
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view cps);
void append_utf8(std::string& out, char32_t cp);
bool is_ascii(std::string_view s);
std::size_t length(std::string_view s);  // len(s)
bool is_space(char32_t c);               // str.isspace()

enum class Side { left, right, both };
// s.strip(chars) / lstrip / rstrip; chars unset means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, Side side);
// s.split(sep, maxsplit) and s.rsplit(...); sep unset means runs of whitespace.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit,
                               bool from_right);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view with, std::int64_t count);
std::int64_t find(std::string_view s, std::string_view sub, bool from_right);  // code point index or -1
std::int64_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);   // str.capitalize()
std::string title(std::string_view s);        // str.title()
std::string jinja_title(std::string_view s);  // jinja2's |title filter

// s[start:stop:step] on code points, Python's index rules; step != 0.
std::string slice(std::string_view s, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                  std::int64_t step);
std::string repr(std::string_view s);  // repr(s) with Python's quote choice

// Python slice index normalisation: fills [start, stop) with step for a sequence of n.
struct SliceRange {
  std::int64_t start, stop, step, count;
};
SliceRange slice_range(std::int64_t n, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                       std::int64_t step);

}  // namespace ember::chat::pystr
