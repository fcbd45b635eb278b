#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace ember::tok {
namespace {

using unicode_detail::CodePointRange;

uint8_t lookup(uint32_t cp) {
  const CodePointRange* begin = unicode_detail::kCodePointRanges;
  const CodePointRange* end = begin + unicode_detail::kCodePointRangeCount;
  const CodePointRange* it =
      std::upper_bound(begin, end, cp, [](uint32_t c, const CodePointRange& r) { return c < r.first; });
  if (it == begin) return 0;
  --it;
  return cp <= it->last ? it->value : 0;
}

// Class value per ASCII/Latin-1 code point, built once from the tables.
const std::array<uint8_t, 256>& latin1_table() {
  static const std::array<uint8_t, 256> table = [] {
    std::array<uint8_t, 256> t{};
    for (uint32_t cp = 0; cp < 256; ++cp) t[cp] = lookup(cp);
    return t;
  }();
  return table;
}

uint8_t value_of(uint32_t cp) { return cp < 256 ? latin1_table()[cp] : lookup(cp); }

}  // namespace

CharClass char_class(uint32_t cp) { return static_cast<CharClass>(value_of(cp) & 0x7F); }
bool is_whitespace(uint32_t cp) { return (value_of(cp) & 0x80) != 0; }

Utf8Char decode_utf8(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) return {lead, 1, true};
  uint32_t len = 0;
  uint32_t cp = 0;
  uint32_t min_cp = 0;
  if ((lead & 0xE0) == 0xC0) {
    len = 2, cp = lead & 0x1F, min_cp = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, cp = lead & 0x0F, min_cp = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, cp = lead & 0x07, min_cp = 0x10000;
  } else {
    return {0xFFFD, 1, false};
  }
  if (pos + len > text.size()) return {0xFFFD, 1, false};
  for (uint32_t i = 1; i < len; ++i) {
    const uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return {0xFFFD, 1, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0xFFFD, 1, false};
  return {cp, len, true};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// True when `lead` followed by `second` (or by nothing, when second < 0) can still grow
// into a valid, non-overlong, non-surrogate sequence.
static bool can_continue(uint8_t lead, int second) {
  if (lead < 0xC2 || lead > 0xF4) return false;
  if (second < 0) return true;
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  else if (lead == 0xED) hi = 0x9F;
  else if (lead == 0xF0) lo = 0x90;
  else if (lead == 0xF4) hi = 0x8F;
  return second >= lo && second <= hi;
}

size_t complete_utf8_prefix(std::string_view bytes) {
  // Look back at most 3 bytes for the lead byte of a sequence that is still open.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = static_cast<uint8_t>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if ((b & 0xE0) == 0xC0) need = 2;
    else if ((b & 0xF0) == 0xE0) need = 3;
    else if ((b & 0xF8) == 0xF0) need = 4;
    if (need <= back) return n;  // ASCII, invalid lead, or a finished sequence
    const int second = back >= 2 ? static_cast<uint8_t>(bytes[n - back + 1]) : -1;
    return can_continue(b, second) ? n - back : n;
  }
  return n;
}

}  // namespace ember::tok
