// Unicode tables, UTF-8 handling and the hand-written pre-tokenizers. The expected splits
// were produced with Python's `regex` module running the original patterns (for smollm:
// each \p{N} alone, then the gpt2 pattern on each stretch between).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

TEST(Unicode, Classes) {
  EXPECT_EQ(char_class('a'), CharClass::letter);
  EXPECT_EQ(char_class(0x00E9), CharClass::letter);   // é
  EXPECT_EQ(char_class(0x65E5), CharClass::letter);   // 日 (inside a First/Last range)
  EXPECT_EQ(char_class(0xAC00), CharClass::letter);   // 가 (Hangul range)
  EXPECT_EQ(char_class('7'), CharClass::number);
  EXPECT_EQ(char_class(0x00BD), CharClass::number);   // ½
  EXPECT_EQ(char_class(0x2167), CharClass::number);   // Ⅷ
  EXPECT_EQ(char_class(0x0301), CharClass::mark);
  EXPECT_EQ(char_class('!'), CharClass::punct);
  EXPECT_EQ(char_class('+'), CharClass::symbol);
  EXPECT_EQ(char_class(0x1F600), CharClass::symbol);  // 😀
  EXPECT_EQ(char_class(0x3000), CharClass::separator);
  EXPECT_EQ(char_class(0x0001), CharClass::other);
  EXPECT_EQ(char_class(0xE000), CharClass::other);    // private use
  EXPECT_EQ(char_class(0x110000), CharClass::other);  // past the end
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x2028u, 0x3000u}) EXPECT_TRUE(is_whitespace(cp)) << cp;
  for (uint32_t cp : {0x200Bu, 0xFEFFu, uint32_t('a'), 0u}) EXPECT_FALSE(is_whitespace(cp)) << cp;
}

TEST(Unicode, DecodeRejectsInvalidSequences) {
  EXPECT_EQ(decode_utf8("\xC3\xA9", 0).cp, 0xE9u);
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98\x80", 0).len, 4u);
  for (std::string bad : {"\x80", "\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\xE2\x28\xA1"}) {
    const Utf8Char c = decode_utf8(bad, 0);
    EXPECT_FALSE(c.valid) << bad;
    EXPECT_EQ(c.len, 1u);
  }
}

TEST(Unicode, CompletePrefixHoldsBackOpenSequences) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(complete_utf8_prefix("\xE4"), 0u);
  EXPECT_EQ(complete_utf8_prefix("\xE0"), 0u);        // E0 can still become valid (E0 A0..BF ..)
  EXPECT_EQ(complete_utf8_prefix("\xE0\x80"), 2u);    // overlong: never valid, pass it on
  EXPECT_EQ(complete_utf8_prefix("\xED\xA0"), 2u);    // surrogate
  EXPECT_EQ(complete_utf8_prefix("\xC0"), 1u);        // never a lead byte
  EXPECT_EQ(complete_utf8_prefix("x\x80\x80"), 3u);   // stray continuation bytes
}

struct SplitCase {
  PreTokenizer kind;
  std::string text;
  std::vector<std::string> pieces;
};

const SplitCase kSplitCases[] = {
    {PreTokenizer::gpt2, "Hello world", {"Hello", " world"}},
    {PreTokenizer::gpt2, "I'M here, it's 12345 ok!!", {"I", "'", "M", " here", ",", " it", "'s", " 12345", " ok", "!!"}},
    {PreTokenizer::gpt2, "  a  \x0A" "\x0A" " b\x09" "\x09" "c   ", {" ", " a", "  \x0A" "\x0A", " b", "\x09", "\x09", "c", "   "}},
    {PreTokenizer::gpt2, "x\x0D" "\x0A" "\x0D" "\x0A" "  y", {"x", "\x0D" "\x0A" "\x0D" "\x0A" " ", " y"}},
    {PreTokenizer::gpt2, "don'T 'sa we'VE", {"don", "'", "T", " '", "sa", " we", "'", "VE"}},
    {PreTokenizer::gpt2, "\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E" " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88" "123", {"\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E", " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88", "123"}},
    {PreTokenizer::gpt2, "a...  ,b", {"a", "...", " ", " ,", "b"}},
    {PreTokenizer::gpt2, "x'S x'\xC5\xBF", {"x", "'", "S", " x", "'", "\xC5\xBF"}},
    {PreTokenizer::gpt2, " \xC2\xA0" "x", {" ", "\xC2\xA0", "x"}},
    {PreTokenizer::gpt2, "tail  ", {"tail", "  "}},
    {PreTokenizer::gpt2, "a  1  22 \xC2\xBD", {"a", " ", " 1", " ", " 22", " \xC2\xBD"}},
    {PreTokenizer::gpt2, "'ll've're'd", {"'ll", "'ve", "'re", "'d"}},
    {PreTokenizer::gpt2, "?\x0A" "\x0A" "!", {"?", "\x0A", "\x0A", "!"}},
    {PreTokenizer::gpt2, "e\xCC\x81" "t\xC3\xA9" " caf\xC3\xA9", {"e", "\xCC\x81", "t\xC3\xA9", " caf\xC3\xA9"}},
    {PreTokenizer::gpt2, "\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80" " ok", {"\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80", " ok"}},
    {PreTokenizer::gpt2, "", {}},
    {PreTokenizer::llama3, "Hello world", {"Hello", " world"}},
    {PreTokenizer::llama3, "I'M here, it's 12345 ok!!", {"I", "'M", " here", ",", " it", "'s", " ", "123", "45", " ok", "!!"}},
    {PreTokenizer::llama3, "  a  \x0A" "\x0A" " b\x09" "\x09" "c   ", {" ", " a", "  \x0A" "\x0A", " b", "\x09", "\x09" "c", "   "}},
    {PreTokenizer::llama3, "x\x0D" "\x0A" "\x0D" "\x0A" "  y", {"x", "\x0D" "\x0A" "\x0D" "\x0A", " ", " y"}},
    {PreTokenizer::llama3, "don'T 'sa we'VE", {"don", "'T", " '", "sa", " we", "'VE"}},
    {PreTokenizer::llama3, "\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E" " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88" "123", {"\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E", " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88", "123"}},
    {PreTokenizer::llama3, "a...  ,b", {"a", "...", " ", " ,", "b"}},
    {PreTokenizer::llama3, "x'S x'\xC5\xBF", {"x", "'S", " x", "'\xC5\xBF"}},
    {PreTokenizer::llama3, " \xC2\xA0" "x", {" ", "\xC2\xA0" "x"}},
    {PreTokenizer::llama3, "tail  ", {"tail", "  "}},
    {PreTokenizer::llama3, "a  1  22 \xC2\xBD", {"a", " ", " ", "1", " ", " ", "22", " ", "\xC2\xBD"}},
    {PreTokenizer::llama3, "'ll've're'd", {"'ll", "'ve", "'re", "'d"}},
    {PreTokenizer::llama3, "?\x0A" "\x0A" "!", {"?\x0A" "\x0A", "!"}},
    {PreTokenizer::llama3, "e\xCC\x81" "t\xC3\xA9" " caf\xC3\xA9", {"e", "\xCC\x81" "t\xC3\xA9", " caf\xC3\xA9"}},
    {PreTokenizer::llama3, "\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80" " ok", {"\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80", " ok"}},
    {PreTokenizer::llama3, "", {}},
    {PreTokenizer::qwen2, "Hello world", {"Hello", " world"}},
    {PreTokenizer::qwen2, "I'M here, it's 12345 ok!!", {"I", "'M", " here", ",", " it", "'s", " ", "1", "2", "3", "4", "5", " ok", "!!"}},
    {PreTokenizer::qwen2, "  a  \x0A" "\x0A" " b\x09" "\x09" "c   ", {" ", " a", "  \x0A" "\x0A", " b", "\x09", "\x09" "c", "   "}},
    {PreTokenizer::qwen2, "x\x0D" "\x0A" "\x0D" "\x0A" "  y", {"x", "\x0D" "\x0A" "\x0D" "\x0A", " ", " y"}},
    {PreTokenizer::qwen2, "don'T 'sa we'VE", {"don", "'T", " '", "sa", " we", "'VE"}},
    {PreTokenizer::qwen2, "\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E" " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88" "123", {"\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E", " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88", "1", "2", "3"}},
    {PreTokenizer::qwen2, "a...  ,b", {"a", "...", " ", " ,", "b"}},
    {PreTokenizer::qwen2, "x'S x'\xC5\xBF", {"x", "'S", " x", "'\xC5\xBF"}},
    {PreTokenizer::qwen2, " \xC2\xA0" "x", {" ", "\xC2\xA0" "x"}},
    {PreTokenizer::qwen2, "tail  ", {"tail", "  "}},
    {PreTokenizer::qwen2, "a  1  22 \xC2\xBD", {"a", " ", " ", "1", " ", " ", "2", "2", " ", "\xC2\xBD"}},
    {PreTokenizer::qwen2, "'ll've're'd", {"'ll", "'ve", "'re", "'d"}},
    {PreTokenizer::qwen2, "?\x0A" "\x0A" "!", {"?\x0A" "\x0A", "!"}},
    {PreTokenizer::qwen2, "e\xCC\x81" "t\xC3\xA9" " caf\xC3\xA9", {"e", "\xCC\x81" "t\xC3\xA9", " caf\xC3\xA9"}},
    {PreTokenizer::qwen2, "\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80" " ok", {"\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80", " ok"}},
    {PreTokenizer::qwen2, "", {}},
    {PreTokenizer::smollm, "Hello world", {"Hello", " world"}},
    {PreTokenizer::smollm, "I'M here, it's 12345 ok!!", {"I", "'", "M", " here", ",", " it", "'s", " ", "1", "2", "3", "4", "5", " ok", "!!"}},
    {PreTokenizer::smollm, "  a  \x0A" "\x0A" " b\x09" "\x09" "c   ", {" ", " a", "  \x0A" "\x0A", " b", "\x09", "\x09", "c", "   "}},
    {PreTokenizer::smollm, "x\x0D" "\x0A" "\x0D" "\x0A" "  y", {"x", "\x0D" "\x0A" "\x0D" "\x0A" " ", " y"}},
    {PreTokenizer::smollm, "don'T 'sa we'VE", {"don", "'", "T", " '", "sa", " we", "'", "VE"}},
    {PreTokenizer::smollm, "\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E" " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88" "123", {"\xE6\x97\xA5" "\xE6\x9C\xAC" "\xE8\xAA\x9E", " \xE3\x83\x86" "\xE3\x82\xB9" "\xE3\x83\x88", "1", "2", "3"}},
    {PreTokenizer::smollm, "a...  ,b", {"a", "...", " ", " ,", "b"}},
    {PreTokenizer::smollm, "x'S x'\xC5\xBF", {"x", "'", "S", " x", "'", "\xC5\xBF"}},
    {PreTokenizer::smollm, " \xC2\xA0" "x", {" ", "\xC2\xA0", "x"}},
    {PreTokenizer::smollm, "tail  ", {"tail", "  "}},
    {PreTokenizer::smollm, "a  1  22 \xC2\xBD", {"a", "  ", "1", "  ", "2", "2", " ", "\xC2\xBD"}},
    {PreTokenizer::smollm, "'ll've're'd", {"'ll", "'ve", "'re", "'d"}},
    {PreTokenizer::smollm, "?\x0A" "\x0A" "!", {"?", "\x0A", "\x0A", "!"}},
    {PreTokenizer::smollm, "e\xCC\x81" "t\xC3\xA9" " caf\xC3\xA9", {"e", "\xCC\x81", "t\xC3\xA9", " caf\xC3\xA9"}},
    {PreTokenizer::smollm, "\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80" " ok", {"\xF0\x9F\x98\x80" "\xF0\x9F\x98\x80", " ok"}},
    {PreTokenizer::smollm, "", {}},
};

std::vector<std::string> split(PreTokenizer kind, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> ranges;
  pre_tokenize(kind, text, ranges);
  std::vector<std::string> pieces;
  for (auto [b, e] : ranges) pieces.emplace_back(text.substr(b, e - b));
  return pieces;
}

TEST(PreTokenize, MatchesReferenceRegexSplits) {
  for (const SplitCase& c : kSplitCases)
    EXPECT_EQ(split(c.kind, c.text), c.pieces) << "pre-tokenizer " << int(c.kind) << " on \"" << c.text << "\"";
}

TEST(PreTokenize, InvalidBytesAreCoveredOneByOne) {
  const std::string text = "ab\xFF\xFE c\xC3 \xE2\x82";
  for (PreTokenizer kind : {PreTokenizer::gpt2, PreTokenizer::llama3, PreTokenizer::qwen2, PreTokenizer::smollm}) {
    std::vector<std::pair<size_t, size_t>> ranges;
    pre_tokenize(kind, text, ranges);
    size_t at = 0;
    for (auto [b, e] : ranges) {
      EXPECT_EQ(b, at);
      EXPECT_LT(b, e);
      at = e;
    }
    EXPECT_EQ(at, text.size());
  }
}

TEST(PreTokenize, Names) {
  EXPECT_EQ(pre_tokenizer_from_name("default"), PreTokenizer::gpt2);
  EXPECT_EQ(pre_tokenizer_from_name("gpt2"), PreTokenizer::gpt2);
  EXPECT_EQ(pre_tokenizer_from_name("llama-bpe"), PreTokenizer::llama3);
  EXPECT_EQ(pre_tokenizer_from_name("llama3"), PreTokenizer::llama3);
  EXPECT_EQ(pre_tokenizer_from_name("qwen2"), PreTokenizer::qwen2);
  EXPECT_EQ(pre_tokenizer_from_name("smollm"), PreTokenizer::smollm);
  EXPECT_EQ(pre_tokenizer_from_name("deepseek-llm"), std::nullopt);
}

}  // namespace
}  // namespace ember::tok
