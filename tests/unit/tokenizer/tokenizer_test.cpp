// Tokenizers built from small in-memory GGUF files: behaviour on a hand-made vocabulary and
// clear errors for malformed tokenizer metadata.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "unit/formats/gguf_builder.h"

namespace ember::tok {
namespace {

using ember_test::GgufBuilder;
namespace vt = ember_test::vt;

// Metadata pairs to write; later pairs with the same key replace earlier ones.
class Meta {
 public:
  Meta& str(const std::string& k, const std::string& v) {
    return set(k, [=](GgufBuilder& b) { b.kv_string(k, v); });
  }
  Meta& u32(const std::string& k, uint32_t v) {
    return set(k, [=](GgufBuilder& b) { b.kv_u32(k, v); });
  }
  Meta& flag(const std::string& k, bool v) {
    return set(k, [=](GgufBuilder& b) { b.kv_bool(k, v); });
  }
  Meta& strings(const std::string& k, const std::vector<std::string>& v) {
    return set(k, [=](GgufBuilder& b) {
      b.key(k, vt::array).array_header(vt::string, v.size());
      for (const auto& s : v) b.str(s);
    });
  }
  Meta& floats(const std::string& k, const std::vector<float>& v) {
    return set(k, [=](GgufBuilder& b) {
      b.key(k, vt::array).array_header(vt::f32, v.size());
      for (float f : v) b.f32(f);
    });
  }
  Meta& ints(const std::string& k, const std::vector<int32_t>& v) {
    return set(k, [=](GgufBuilder& b) {
      b.key(k, vt::array).array_header(vt::i32, v.size());
      for (int32_t i : v) b.i32(i);
    });
  }
  Meta& erase(const std::string& k) {
    std::erase_if(items_, [&](const auto& it) { return it.first == k; });
    return *this;
  }

  Expected<Tokenizer> build() {
    ember_test::FileSpec spec;
    spec.n_kv = items_.size();
    spec.kv = [this](GgufBuilder& b) {
      for (const auto& [key, write] : items_) write(b);
    };
    bytes_ = ember_test::build_file(spec).bytes;
    Expected<gguf::File> file = gguf::File::parse(bytes_, "test.gguf");
    if (!file.ok()) return file.status();
    return Tokenizer::from_gguf(*file);
  }

 private:
  Meta& set(const std::string& k, std::function<void(GgufBuilder&)> write) {
    erase(k);
    items_.emplace_back(k, std::move(write));
    return *this;
  }
  std::vector<std::pair<std::string, std::function<void(GgufBuilder&)>>> items_;
  std::vector<uint8_t> bytes_;
};

const std::string kMark = "\xE2\x96\x81";  // ▁

// A small SentencePiece-style vocabulary: specials, 256 byte tokens, a few pieces.
Meta spm_meta() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|u|>", "<|ctl|>", "<end_of_turn>"};
  std::vector<int32_t> types = {2, 3, 3, 4, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
  }
  for (const std::string& t : {kMark, std::string("a"), std::string("b"), std::string("c"), kMark + "a",
                               std::string("ab"), kMark + "ab"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  const size_t n = tokens.size();
  // ▁ a b c ▁a ab ▁ab
  const float piece_scores[] = {-10, -10, -10, -10, -1, -2, -0.5f};
  for (size_t i = 0; i < 7; ++i) scores[n - 7 + i] = piece_scores[i];
  Meta m;
  m.str("general.architecture", "llama")
      .str("tokenizer.ggml.model", "llama")
      .strings("tokenizer.ggml.tokens", tokens)
      .floats("tokenizer.ggml.scores", scores)
      .ints("tokenizer.ggml.token_type", types)
      .u32("tokenizer.ggml.unknown_token_id", 0)
      .u32("tokenizer.ggml.bos_token_id", 1)
      .u32("tokenizer.ggml.eos_token_id", 2)
      .flag("tokenizer.ggml.add_bos_token", true)
      .flag("tokenizer.ggml.add_space_prefix", true);
  return m;
}

// A small byte-level BPE vocabulary: the 256 byte characters, four merges, one control token.
Meta bpe_meta() {
  std::vector<std::string> tokens;
  const auto byte_char = [](int b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    static int next = 256;
    static int map[256] = {};
    if (!printable && map[b] == 0) map[b] = next++;
    const uint32_t cp = printable ? uint32_t(b) : uint32_t(map[b]);
    std::string s;
    if (cp < 0x80) s.push_back(char(cp));
    else s += {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    return s;
  };
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
  const std::string space = byte_char(' ');  // Ġ
  for (const std::string& t : {std::string("he"), std::string("ll"), std::string("hell"), space + "w"})
    tokens.push_back(t);
  tokens.push_back("<|end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  Meta m;
  m.str("tokenizer.ggml.model", "gpt2")
      .str("tokenizer.ggml.pre", "default")
      .strings("tokenizer.ggml.tokens", tokens)
      .ints("tokenizer.ggml.token_type", types)
      .strings("tokenizer.ggml.merges", {"h e", "l l", "he ll", space + " w"})
      .u32("tokenizer.ggml.eos_token_id", uint32_t(tokens.size() - 1));
  return m;
}

TEST(SpmTokenizer, MergesByScoreAndFallsBackToBytes) {
  Expected<Tokenizer> tok = spm_meta().build();
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->model_name(), "llama");
  const int32_t mark_ab = *tok->find_token(kMark + "ab");
  const int32_t c = *tok->find_token("c");
  EXPECT_EQ(tok->encode("ab abc", false, false), (std::vector<int32_t>{mark_ab, mark_ab, c}));
  EXPECT_EQ(tok->encode("ab", true, false), (std::vector<int32_t>{1, mark_ab}));
  // "é" is not a piece: its two UTF-8 bytes become byte tokens.
  const int32_t b_c3 = *tok->find_token("<0xC3>"), b_a9 = *tok->find_token("<0xA9>");
  EXPECT_EQ(tok->encode("c\xC3\xA9", false, false),
            (std::vector<int32_t>{*tok->find_token(kMark), c, b_c3, b_a9}));
  EXPECT_EQ(tok->decode(tok->encode("ab abc\xC3\xA9", true, false), true), "ab abc\xC3\xA9");
  // Invalid UTF-8 survives as byte tokens.
  const std::string bad = "a\xFF\xC3(b";
  EXPECT_EQ(tok->decode(tok->encode(bad, false, false)), bad);
}

TEST(SpmTokenizer, SpecialTokens) {
  Expected<Tokenizer> tok = spm_meta().build();
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const std::vector<int32_t> parsed = tok->encode("a<|ctl|>b<|u|>", false, true);
  ASSERT_EQ(parsed.size(), 4u);
  EXPECT_EQ(parsed[1], 4);
  EXPECT_EQ(parsed[3], 3);
  // Without parse_special, control text is ordinary text; user-defined tokens still match.
  const std::vector<int32_t> plain = tok->encode("<|ctl|><|u|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 4), 0);
  EXPECT_EQ(plain.back(), 3);
  EXPECT_EQ(tok->decode(parsed), "a<|ctl|>b<|u|>");
  EXPECT_EQ(tok->decode(parsed, true), "ab<|u|>");
  EXPECT_EQ(tok->token_to_piece(4, false), "");
  EXPECT_TRUE(tok->is_control(4));
  EXPECT_FALSE(tok->is_control(3));
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_TRUE(tok->is_eog(5));  // <end_of_turn>
  EXPECT_FALSE(tok->is_eog(1));
  EXPECT_FALSE(tok->is_eog(-1));
  EXPECT_FALSE(tok->is_eog(100000));
  EXPECT_EQ(tok->token_to_piece(-3), "");
  EXPECT_EQ(tok->token_text(100000), "");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->add_bos());
}

TEST(BpeTokenizer, MergesByRank) {
  Expected<Tokenizer> tok = bpe_meta().build();
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->model_name(), "gpt2");
  EXPECT_EQ(tok->pre_name(), "default");
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_FALSE(tok->add_bos());
  const int32_t hell = 258, space_w = 259;
  EXPECT_EQ(tok->encode("hello world", true, false),
            (std::vector<int32_t>{hell, 'o', space_w, 'o', 'r', 'l', 'd'}));
  const std::vector<int32_t> ids = tok->encode("hello<|end|>", false, true);
  EXPECT_EQ(ids.back(), 260);
  EXPECT_TRUE(tok->is_eog(260));
  // Any bytes, valid UTF-8 or not, round-trip.
  for (std::string text : {std::string("tab\there\n\n  x"), std::string("\xFF\xFE bad \xC3"),
                           std::string("\xF0\x9F\x98\x80 ok"), std::string("a\0b", 3)})
    EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text);
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  Expected<Tokenizer> tok = bpe_meta().build();
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const std::string text = "\xF0\x9F\x98\x80x";  // 😀x: four byte tokens, then x
  const std::vector<int32_t> ids = tok->encode(text, false, false);
  ASSERT_EQ(ids.size(), 5u);
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(ids[0]), "");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), "");
  EXPECT_EQ(stream.push(ids[3]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.push(ids[4]), "x");
  EXPECT_EQ(stream.flush(), "");
  // A sequence that can never complete is passed on at once; an open one comes out on flush.
  StreamDecoder stream2(*tok);
  EXPECT_EQ(stream2.push(0xC0), "\xC0");
  EXPECT_EQ(stream2.push(0xE4), "");
  EXPECT_EQ(stream2.flush(), "\xE4");
}

// Each malformed variant must fail with the given kind and a message naming `needle`.
void expect_error(Meta meta, ErrorKind kind, const std::string& needle) {
  Expected<Tokenizer> tok = meta.build();
  ASSERT_FALSE(tok.ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(tok.status().kind(), kind) << tok.status().message();
  EXPECT_NE(tok.status().message().find(needle), std::string::npos) << tok.status().message();
  EXPECT_NE(tok.status().message().find("test.gguf"), std::string::npos) << tok.status().message();
}

TEST(TokenizerErrors, MalformedMetadata) {
  expect_error(spm_meta().erase("tokenizer.ggml.model"), ErrorKind::not_found, "tokenizer.ggml.model");
  expect_error(spm_meta().str("tokenizer.ggml.model", "bert"), ErrorKind::unsupported, "\"bert\"");
  expect_error(bpe_meta().str("tokenizer.ggml.pre", "deepseek-llm"), ErrorKind::unsupported, "deepseek-llm");
  expect_error(spm_meta().erase("tokenizer.ggml.tokens"), ErrorKind::not_found, "tokenizer.ggml.tokens");
  expect_error(spm_meta().strings("tokenizer.ggml.tokens", {}), ErrorKind::invalid_file, "empty");
  expect_error(spm_meta().ints("tokenizer.ggml.tokens", {1, 2}), ErrorKind::invalid_file, "tokenizer.ggml.tokens");
  expect_error(spm_meta().floats("tokenizer.ggml.scores", {0.0f, 1.0f}), ErrorKind::invalid_file,
               "tokenizer.ggml.scores");
  expect_error(spm_meta().erase("tokenizer.ggml.scores"), ErrorKind::invalid_file, "tokenizer.ggml.scores");
  expect_error(spm_meta().ints("tokenizer.ggml.token_type", {1, 1, 1}), ErrorKind::invalid_file,
               "tokenizer.ggml.token_type");
  expect_error(spm_meta().u32("tokenizer.ggml.bos_token_id", 100000), ErrorKind::invalid_file, "100000");
  expect_error(spm_meta().str("tokenizer.ggml.eos_token_id", "2"), ErrorKind::invalid_file,
               "tokenizer.ggml.eos_token_id");
  expect_error(spm_meta().u32("tokenizer.ggml.add_bos_token", 1), ErrorKind::invalid_file,
               "tokenizer.ggml.add_bos_token");
  expect_error(spm_meta().erase("tokenizer.ggml.bos_token_id"), ErrorKind::invalid_file, "bos_token_id");
  expect_error(bpe_meta().erase("tokenizer.ggml.merges"), ErrorKind::not_found, "tokenizer.ggml.merges");
  expect_error(bpe_meta().strings("tokenizer.ggml.merges", {"h e", "hx"}), ErrorKind::invalid_file, "\"hx\"");
  expect_error(bpe_meta().strings("tokenizer.ggml.merges", {"h zz"}), ErrorKind::invalid_file, "\"h zz\"");
}

TEST(TokenizerErrors, BadTokenTypes) {
  Meta bad_type = spm_meta();
  std::vector<int32_t> types(6 + 256 + 7, 1);
  types[10] = 9;
  expect_error(bad_type.ints("tokenizer.ggml.token_type", types), ErrorKind::invalid_file, "entry 10 is 9");

  // A token marked as a byte token whose text is not <0xNN>.
  Meta bad_byte = spm_meta();
  types.assign(6 + 256 + 7, 1);
  types[6 + 256] = 6;  // "▁"
  expect_error(bad_byte.ints("tokenizer.ggml.token_type", types), ErrorKind::invalid_file, "<0xNN>");
}

}  // namespace
}  // namespace ember::tok
