#include "chat/pystr.h"

#include <algorithm>

namespace ember::chat::pystr {
namespace {

constexpr char32_t kInvalidBase = 0x110000;

bool ascii_lower(char32_t c) { return c >= 'a' && c <= 'z'; }
bool ascii_upper(char32_t c) { return c >= 'A' && c <= 'Z'; }
char32_t to_upper(char32_t c) { return ascii_lower(c) ? c - 32 : c; }
char32_t to_lower(char32_t c) { return ascii_upper(c) ? c + 32 : c; }
bool is_cased(char32_t c) { return ascii_lower(c) || ascii_upper(c); }

std::size_t byte_index_to_char_index(std::string_view s, std::size_t byte_index) {
  return length(s.substr(0, byte_index));
}

bool in_set(const std::u32string& set, char32_t c) { return set.find(c) != std::u32string::npos; }

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1f) : n == 3 ? (b0 & 0x0f) : (b0 & 0x07);
    bool ok = n > 0 && i + n <= s.size();
    for (int k = 1; ok && k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (ok && n > 1) {
      static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) ok = false;
    }
    if (!ok) {
      out.push_back(kInvalidBase + b0);
      i += 1;
      continue;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= kInvalidBase) {
    out.push_back(static_cast<char>(cp - kInvalidBase));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::size_t length(std::string_view s) { return is_ascii(s) ? s.size() : decode(s).size(); }

bool is_space(char32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return true;
  if (c < 0x80) return false;
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, Side side) {
  std::u32string cps = decode(s);
  std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars ? in_set(set, c) : is_space(c); };
  std::size_t begin = 0, end = cps.size();
  if (side != Side::right) {
    while (begin < end && strip_it(cps[begin])) ++begin;
  }
  if (side != Side::left) {
    while (end > begin && strip_it(cps[end - 1])) --end;
  }
  return encode(std::u32string_view(cps).substr(begin, end - begin));
}

namespace {

std::vector<std::string> split_whitespace(std::string_view s, std::int64_t maxsplit, bool from_right) {
  std::u32string cps = decode(s);
  if (from_right) std::reverse(cps.begin(), cps.end());
  std::vector<std::u32string> parts;
  std::size_t i = 0, n = cps.size();
  while (i < n) {
    while (i < n && is_space(cps[i])) ++i;
    if (i == n) break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
      std::size_t end = n;
      while (end > i && is_space(cps[end - 1])) --end;
      parts.push_back(cps.substr(i, end - i));
      break;
    }
    std::size_t j = i;
    while (j < n && !is_space(cps[j])) ++j;
    parts.push_back(cps.substr(i, j - i));
    i = j;
  }
  std::vector<std::string> out;
  for (auto& p : parts) {
    if (from_right) std::reverse(p.begin(), p.end());
    out.push_back(encode(p));
  }
  if (from_right) std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit,
                               bool from_right) {
  if (!sep) return split_whitespace(s, maxsplit, from_right);
  std::vector<std::string> out;
  std::string_view rest = s;
  std::int64_t done = 0;
  if (!from_right) {
    std::size_t pos;
    while ((maxsplit < 0 || done < maxsplit) && (pos = rest.find(*sep)) != std::string_view::npos) {
      out.emplace_back(rest.substr(0, pos));
      rest = rest.substr(pos + sep->size());
      ++done;
    }
    out.emplace_back(rest);
    return out;
  }
  std::size_t pos;
  while ((maxsplit < 0 || done < maxsplit) && (pos = rest.rfind(*sep)) != std::string_view::npos) {
    out.emplace_back(rest.substr(pos + sep->size()));
    rest = rest.substr(0, pos);
    ++done;
  }
  out.emplace_back(rest);
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string cps = decode(s);
  std::vector<std::string> out;
  std::size_t start = 0, i = 0;
  auto is_break = [](char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
  };
  while (i < cps.size()) {
    if (!is_break(cps[i])) {
      ++i;
      continue;
    }
    std::size_t eol = i;
    i += (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? 2 : 1;
    out.push_back(encode(std::u32string_view(cps).substr(start, (keepends ? i : eol) - start)));
    start = i;
  }
  if (start < cps.size()) out.push_back(encode(std::u32string_view(cps).substr(start)));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, std::int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string cps = decode(s);
    std::int64_t done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) {
        out.append(with);
        ++done;
      }
      append_utf8(out, c);
    }
    if (count < 0 || done < count) out.append(with);
    return out;
  }
  std::size_t pos = 0, hit;
  std::int64_t done = 0;
  while ((count < 0 || done < count) && (hit = s.find(old, pos)) != std::string_view::npos) {
    out.append(s.substr(pos, hit - pos));
    out.append(with);
    pos = hit + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

std::int64_t find(std::string_view s, std::string_view sub, bool from_right) {
  std::size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<std::int64_t>(byte_index_to_char_index(s, hit));
}

std::int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<std::int64_t>(length(s)) + 1;
  std::int64_t n = 0;
  for (std::size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(to_upper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(to_lower(static_cast<unsigned char>(c)));
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out = lower(s);
  if (!out.empty()) out[0] = static_cast<char>(to_upper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string title(std::string_view s) {
  std::string out(s);
  bool previous_cased = false;
  for (char& ch : out) {
    auto c = static_cast<unsigned char>(ch);
    if (is_cased(c)) {
      ch = static_cast<char>(previous_cased ? to_lower(c) : to_upper(c));
      previous_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  // jinja2: words start after runs of [-\s({\[<]; first char upper, rest lower.
  std::u32string cps = decode(s);
  auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c); };
  std::string out;
  bool word_start = true;
  for (char32_t c : cps) {
    if (is_sep(c)) {
      word_start = true;
      append_utf8(out, c);
      continue;
    }
    append_utf8(out, word_start ? to_upper(c) : to_lower(c));
    word_start = false;
  }
  return out;
}

SliceRange slice_range(std::int64_t n, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                       std::int64_t step) {
  auto clamp = [n](std::int64_t v) { return std::clamp<std::int64_t>(v, -n - 1, n + 1); };
  SliceRange r{0, 0, step, 0};
  if (step > 0) {
    r.start = start ? clamp(*start) : 0;
    r.stop = stop ? clamp(*stop) : n;
    if (r.start < 0) r.start = std::max<std::int64_t>(r.start + n, 0);
    if (r.start > n) r.start = n;
    if (r.stop < 0) r.stop = std::max<std::int64_t>(r.stop + n, 0);
    if (r.stop > n) r.stop = n;
    r.count = r.stop > r.start ? (r.stop - r.start - 1) / step + 1 : 0;
  } else {
    r.start = start ? clamp(*start) : n - 1;
    r.stop = stop ? clamp(*stop) : -1;
    if (start && r.start < 0) r.start = std::max<std::int64_t>(r.start + n, -1);
    if (r.start >= n) r.start = n - 1;
    if (stop && r.stop < 0) r.stop = std::max<std::int64_t>(r.stop + n, -1);
    if (r.stop >= n) r.stop = n - 1;
    r.count = r.stop < r.start ? (r.start - r.stop - 1) / (-step) + 1 : 0;
  }
  return r;
}

std::string slice(std::string_view s, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                  std::int64_t step) {
  std::u32string cps = decode(s);
  SliceRange r = slice_range(static_cast<std::int64_t>(cps.size()), start, stop, step);
  std::string out;
  for (std::int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) append_utf8(out, cps[i]);
  return out;
}

namespace {

bool printable(char32_t c) {
  if (c < 0x20 || c == 0x7f) return false;
  if (c < 0x7f) return true;
  if (c >= kInvalidBase) return false;
  if (c < 0xa1 || c == 0xad) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f)) return false;
  if ((c >= 0x205f && c <= 0x206f) || c == 0x3000 || c == 0xfeff) return false;
  if ((c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xfffb) || c >= 0xf0000) return false;
  return true;
}

}  // namespace

std::string repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (printable(c)) {
      append_utf8(out, c);
    } else {
      char buf[16];
      char32_t v = c >= kInvalidBase ? c - kInvalidBase : c;
      if (v < 0x100) {
        snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(v));
      } else if (v < 0x10000) {
        snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(v));
      } else {
        snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(v));
      }
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace ember::chat::pystr
