#include "tokenizer/pretokenize.h"

#include <cstdint>

#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

constexpr uint8_t kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8;
constexpr uint32_t kInvalid = 0x110000;  // an invalid byte: no class at all

// The text decoded once: code point and class flags per character, byte offset of each
// character plus one past the end.
struct Chars {
  std::vector<uint32_t> cps;
  std::vector<uint8_t> flags;
  std::vector<size_t> offsets;

  explicit Chars(std::string_view text) {
    cps.reserve(text.size());
    flags.reserve(text.size());
    offsets.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
      const Utf8Char c = decode_utf8(text, pos);
      const uint32_t cp = c.valid ? c.cp : kInvalid;
      uint8_t f = 0;
      if (c.valid) {
        const CharClass cls = char_class(cp);
        if (cls == CharClass::letter) f |= kLetter;
        if (cls == CharClass::number) f |= kNumber;
        if (is_whitespace(cp)) f |= kSpace;
        if (cp == '\r' || cp == '\n') f |= kNewline;
      }
      cps.push_back(cp);
      flags.push_back(f);
      offsets.push_back(pos);
      pos += c.len;
    }
    offsets.push_back(text.size());
  }
  size_t size() const { return cps.size(); }
  bool letter(size_t i) const { return flags[i] & kLetter; }
  bool number(size_t i) const { return flags[i] & kNumber; }
  bool space(size_t i) const { return flags[i] & kSpace; }
  bool newline(size_t i) const { return flags[i] & kNewline; }
  bool other(size_t i) const { return (flags[i] & (kLetter | kNumber | kSpace)) == 0; }  // [^\s\p{L}\p{N}]
};

uint32_t fold_ascii(uint32_t cp, bool ignore_case) {
  if (!ignore_case) return cp;
  if (cp >= 'A' && cp <= 'Z') return cp + ('a' - 'A');
  if (cp == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to 's'
  return cp;
}

// 's|'t|'re|'ve|'m|'ll|'d at i; returns the end or i when none matches.
size_t match_contraction(const Chars& c, size_t i, size_t end, bool ignore_case) {
  if (c.cps[i] != '\'' || i + 1 >= end) return i;
  const uint32_t a = fold_ascii(c.cps[i + 1], ignore_case);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 >= end) return i;
  const uint32_t b = fold_ascii(c.cps[i + 2], ignore_case);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return i;
}

template <typename Pred>
size_t run(size_t i, size_t end, Pred pred) {
  while (i < end && pred(i)) ++i;
  return i;
}

// \s+(?!\S)|\s+ at a whitespace character i.
size_t match_trailing_space(const Chars& c, size_t i, size_t end) {
  const size_t k = run(i, end, [&](size_t j) { return c.space(j); });
  if (k == end || k - i < 2) return k;  // at the end, or a single space before \S (\s+)
  return k - 1;                         // leave the last space to join the next piece
}

size_t match_gpt2(const Chars& c, size_t i, size_t end) {
  if (size_t k = match_contraction(c, i, end, false); k != i) return k;
  const bool space_prefix = c.cps[i] == ' ' && i + 1 < end;
  const size_t j = space_prefix ? i + 1 : i;
  if (c.letter(i) || (space_prefix && c.letter(j))) return run(j, end, [&](size_t x) { return c.letter(x); });
  if (c.number(i) || (space_prefix && c.number(j))) return run(j, end, [&](size_t x) { return c.number(x); });
  if (c.other(i) || (space_prefix && c.other(j))) return run(j, end, [&](size_t x) { return c.other(x); });
  return match_trailing_space(c, i, end);
}

size_t match_llama3(const Chars& c, size_t i, size_t end, size_t max_digits) {
  if (size_t k = match_contraction(c, i, end, true); k != i) return k;
  const auto letters = [&](size_t from) { return run(from, end, [&](size_t x) { return c.letter(x); }); };
  if (c.letter(i)) return letters(i);
  if (!c.newline(i) && !c.number(i) && i + 1 < end && c.letter(i + 1)) return letters(i + 1);
  if (c.number(i)) {
    size_t k = i;
    while (k < end && k - i < max_digits && c.number(k)) ++k;
    return k;
  }
  const size_t j = (c.cps[i] == ' ' && i + 1 < end && c.other(i + 1)) ? i + 1 : i;
  if (c.other(j)) {
    const size_t k = run(j, end, [&](size_t x) { return c.other(x); });
    return run(k, end, [&](size_t x) { return c.newline(x); });
  }
  // \s*[\r\n]+ : whitespace up to and including the run's last newline.
  const size_t k = run(i, end, [&](size_t x) { return c.space(x); });
  for (size_t p = k; p > i; --p) {
    if (c.newline(p - 1)) return p;
  }
  return match_trailing_space(c, i, end);
}

size_t match_next(PreTokenizer kind, const Chars& c, size_t i, size_t end) {
  switch (kind) {
    case PreTokenizer::llama3: return match_llama3(c, i, end, 3);
    case PreTokenizer::qwen2: return match_llama3(c, i, end, 1);
    case PreTokenizer::gpt2:
    case PreTokenizer::smollm: break;
  }
  return match_gpt2(c, i, end);
}

void split_range(PreTokenizer kind, const Chars& c, size_t begin, size_t end,
                 std::vector<std::pair<size_t, size_t>>& out) {
  for (size_t i = begin; i < end;) {
    size_t k = match_next(kind, c, i, end);
    if (k <= i) k = i + 1;  // cannot happen with the patterns above; never loop forever
    out.emplace_back(c.offsets[i], c.offsets[k]);
    i = k;
  }
}

}  // namespace

std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name) {
  if (name == "default" || name == "gpt2" || name.empty()) return PreTokenizer::gpt2;
  if (name == "llama3" || name == "llama-bpe" || name == "llama-v3") return PreTokenizer::llama3;
  if (name == "qwen2") return PreTokenizer::qwen2;
  if (name == "smollm") return PreTokenizer::smollm;
  return std::nullopt;
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::pair<size_t, size_t>>& out) {
  const Chars c(text);
  if (kind != PreTokenizer::smollm) {
    split_range(kind, c, 0, c.size(), out);
    return;
  }
  // smollm: each number character alone; the gpt2 pattern on the stretches between, each
  // stretch split on its own (so `\s+(?!\S)` sees a stretch's end as the end of input).
  size_t start = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.number(i)) continue;
    split_range(kind, c, start, i, out);
    out.emplace_back(c.offsets[i], c.offsets[i + 1]);
    start = i + 1;
  }
  split_range(kind, c, start, c.size(), out);
}

}  // namespace ember::tok
