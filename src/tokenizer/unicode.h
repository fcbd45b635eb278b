// UTF-8 decoding and Unicode character classes for the tokenizer's pre-tokenizers.
// Class tables are generated from Unicode data by scripts/gen_unicode_tables.py.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ember::tok {

// General category, collapsed to its first letter (L, N, M, P, S, Z; everything else
// — controls, unassigned, private use — is `other`).
enum class CharClass : uint8_t { other = 0, letter = 1, number = 2, mark = 3, punct = 4, symbol = 5, separator = 6 };

CharClass char_class(uint32_t cp);
bool is_whitespace(uint32_t cp);  // the White_Space property (regex \s)
inline bool is_letter(uint32_t cp) { return char_class(cp) == CharClass::letter; }
inline bool is_number(uint32_t cp) { return char_class(cp) == CharClass::number; }

// One decoded code point: `cp` and the number of bytes it took. Invalid input (a bad lead
// byte, a truncated or overlong sequence, a surrogate, a value past U+10FFFF) decodes
// as one byte with `valid` false and cp = 0xFFFD, so callers can treat the byte alone.
struct Utf8Char {
  uint32_t cp = 0;
  uint32_t len = 1;
  bool valid = true;
};
Utf8Char decode_utf8(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence that
// could still be completed by more bytes. Invalid bytes count as complete.
size_t complete_utf8_prefix(std::string_view bytes);

namespace unicode_detail {
struct CodePointRange {
  uint32_t first;
  uint32_t last;
  uint8_t value;  // CharClass in the low 7 bits, 0x80 when White_Space
};
extern const CodePointRange kCodePointRanges[];
extern const size_t kCodePointRangeCount;
}  // namespace unicode_detail

}  // namespace ember::tok
