// Checks the tokenizer against reference ids from Hugging Face transformers
// (tests/fixtures/tokenizer/*.json, written by scripts/make_tokenizer_fixtures.py).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "tokenizer/tokenizer.h"
#include "unit/formats/test_paths.h"

namespace ember::tok {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids_plain;
  std::vector<int32_t> ids_special;
};

struct Fixture {
  std::string gguf;
  std::vector<Case> cases;
};

Fixture load_fixture(const std::string& name) {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  Fixture f;
  if (!in.good()) return f;
  const nlohmann::json j = nlohmann::json::parse(in);
  f.gguf = j.at("gguf").get<std::string>();
  for (const auto& c : j.at("cases"))
    f.cases.push_back({c.at("text").get<std::string>(), c.at("ids_plain").get<std::vector<int32_t>>(),
                       c.at("ids_special").get<std::vector<int32_t>>()});
  return f;
}

// Opened models, shared by the tests of one binary run (a 262k vocabulary takes a moment).
struct Loaded {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

const Tokenizer* open_tokenizer(const std::string& path) {
  static std::map<std::string, Loaded> cache;
  auto it = cache.find(path);
  if (it == cache.end()) {
    Loaded loaded;
    Expected<gguf::File> file = gguf::File::open(path);
    EXPECT_TRUE(file.ok()) << file.status().message();
    if (!file.ok()) return nullptr;
    loaded.file = std::make_unique<gguf::File>(std::move(file).value());
    Expected<Tokenizer> tok = Tokenizer::from_gguf(*loaded.file);
    EXPECT_TRUE(tok.ok()) << tok.status().message();
    if (!tok.ok()) return nullptr;
    loaded.tokenizer = std::make_unique<Tokenizer>(std::move(tok).value());
    it = cache.emplace(path, std::move(loaded)).first;
  }
  return it->second.tokenizer.get();
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

class TokenizerFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizerFixture, MatchesReferenceIds) {
  const Fixture f = load_fixture(GetParam());
  ASSERT_FALSE(f.cases.empty());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  int matched = 0;
  for (const Case& c : f.cases) {
    const std::vector<int32_t> plain = tok->encode(c.text, false, true);
    const std::vector<int32_t> special = tok->encode(c.text, true, true);
    EXPECT_EQ(plain, c.ids_plain) << "text: \"" << c.text << "\"\n got " << show(plain) << "\n want "
                                  << show(c.ids_plain);
    EXPECT_EQ(special, c.ids_special) << "text: \"" << c.text << "\"";
    matched += plain == c.ids_plain && special == c.ids_special;
  }
  std::printf("[ fixture  ] %s: %d/%zu cases match\n", GetParam(), matched, f.cases.size());
}

TEST_P(TokenizerFixture, DecodeRoundTrips) {
  const Fixture f = load_fixture(GetParam());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  for (const Case& c : f.cases) {
    EXPECT_EQ(tok->decode(tok->encode(c.text, false, true)), c.text);
    // With BOS added, skipping specials gives the text back too.
    EXPECT_EQ(tok->decode(tok->encode(c.text, true, false), true), c.text);
  }
}

TEST_P(TokenizerFixture, StreamDecoderMatchesDecode) {
  const Fixture f = load_fixture(GetParam());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  for (const Case& c : f.cases) {
    const std::vector<int32_t> ids = tok->encode(c.text, true, true);
    StreamDecoder stream(*tok);
    std::string joined;
    for (int32_t id : ids) joined += stream.push(id);
    joined += stream.flush();
    EXPECT_EQ(joined, tok->decode(ids)) << "text: \"" << c.text << "\"";
  }
}

TEST_P(TokenizerFixture, StreamDecoderHoldsBackSplitCharacters) {
  const Fixture f = load_fixture(GetParam());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  // Rare characters end up as byte tokens (byte fallback / byte-level pieces).
  const std::string text = "\xF0\x9F\xA6\x84 \xF0\x9F\xAB\x8E \xE4\xB9\x82\xE9\xBE\x98 \xF0\xA0\x80\x80!";
  const std::vector<int32_t> ids = tok->encode(text, false, false);
  StreamDecoder stream(*tok);
  std::string joined;
  bool held_back = false;
  for (int32_t id : ids) {
    const std::string out = stream.push(id);
    // Every chunk is whole UTF-8 on its own.
    for (size_t pos = 0; pos < out.size();) {
      ASSERT_LE(pos + 1, out.size());
      const auto b = static_cast<uint8_t>(out[pos]);
      const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
      ASSERT_LE(pos + len, out.size()) << "chunk ends inside a character";
      pos += len;
    }
    if (out.empty()) held_back = true;
    joined += out;
  }
  joined += stream.flush();
  EXPECT_EQ(joined, text);
  EXPECT_EQ(joined, tok->decode(ids));
  EXPECT_TRUE(held_back) << "expected at least one character split over several tokens";
}

TEST_P(TokenizerFixture, EncodesLargeTextQuickly) {
  const Fixture f = load_fixture(GetParam());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  std::string text;
  while (text.size() < 100 * 1024)
    for (const Case& c : f.cases) text += c.text + "\n";
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok->encode(text, true, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ perf     ] %s: %zu bytes -> %zu tokens in %.3f s\n", GetParam(), text.size(), ids.size(), seconds);
  EXPECT_LT(seconds, 1.0);
  EXPECT_EQ(tok->decode(ids, true), text);
}

TEST_P(TokenizerFixture, RandomBytesRoundTrip) {
  const Fixture f = load_fixture(GetParam());
  EMBER_MODEL_OR_SKIP(path, f.gguf.c_str());
  const Tokenizer* tok = open_tokenizer(path);
  ASSERT_NE(tok, nullptr);
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // Random bytes among those the vocabulary can spell (SmolLM2 has no token for a few
  // bytes, e.g. 0x04 or 0xF1; those encode as <unk>), mixed with characters that matter.
  // Not U+2581: SentencePiece vocabularies spell spaces with it, so it decodes as a space.
  const std::string alphabet = " \t\n<>|_abc\xC3\xA9\xE2\x96\xF0\x9F";
  std::string spellable;
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, char(b));
    if (tok->decode(tok->encode(one, false, false)) == one) spellable += one;
  }
  ASSERT_GE(spellable.size(), 200u);
  for (int iter = 0; iter < 300; ++iter) {
    std::string text(rng() % 64, '\0');
    for (char& ch : text) ch = (rng() % 2) ? spellable[rng() % spellable.size()] : alphabet[rng() % alphabet.size()];
    if (text.find("\xE2\x96\x81") != std::string::npos) continue;
    for (bool parse_special : {false, true}) {
      const std::vector<int32_t> ids = tok->encode(text, false, parse_special);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab());
      EXPECT_EQ(tok->decode(ids), text);
    }
  }
}

TEST(TokenizerModels, SpecialIds) {
  {
    EMBER_MODEL_OR_SKIP(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
    const Tokenizer* tok = open_tokenizer(path);
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->model_name(), "gpt2");
    EXPECT_EQ(tok->pre_name(), "smollm");
    EXPECT_EQ(tok->n_vocab(), 49152);
    EXPECT_FALSE(tok->add_bos());
    EXPECT_EQ(tok->find_token("<|im_start|>"), 1);
    EXPECT_TRUE(tok->is_eog(2));   // <|im_end|> (eos)
    EXPECT_TRUE(tok->is_eog(0));   // <|endoftext|>
    EXPECT_FALSE(tok->is_eog(1));  // <|im_start|>
    EXPECT_EQ(tok->token_to_piece(*tok->find_token("\xC4\xA0the")), " the");  // "Ġthe"
  }
  {
    EMBER_MODEL_OR_SKIP(path, "gemma-3-270m-q4_k_m.gguf");
    const Tokenizer* tok = open_tokenizer(path);
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->model_name(), "llama");
    EXPECT_EQ(tok->n_vocab(), 262144);
    EXPECT_TRUE(tok->add_bos());
    EXPECT_FALSE(tok->add_space_prefix());
    EXPECT_EQ(tok->bos_id(), 2);
    EXPECT_EQ(tok->eos_id(), 1);
    EXPECT_TRUE(tok->is_eog(1));
    EXPECT_TRUE(tok->is_eog(106));   // <end_of_turn>
    EXPECT_FALSE(tok->is_eog(105));  // <start_of_turn>
    EXPECT_TRUE(tok->is_control(105));
    EXPECT_EQ(tok->token_to_piece(105, false), "");
    EXPECT_EQ(tok->token_to_piece(*tok->find_token("<0x41>")), "A");
    EXPECT_EQ(tok->token_to_piece(*tok->find_token("\xE2\x96\x81the")), " the");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerFixture, ::testing::Values("smollm2.json", "gemma3.json"),
                         [](const auto& info) {
                           std::string name = info.param;
                           return name.substr(0, name.find('.'));
                         });

}  // namespace
}  // namespace ember::tok
