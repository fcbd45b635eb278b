// Hugging Face inputs that must fail with a clear error (tokenizer.json, config.json,
// generation_config.json, weights), plus tokenizer.json shapes the fixtures do not cover.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/hf/config.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ember_test::TempDir;
using ember_test::write_text;

std::string fixture_dir(const std::string& name) { return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/hf/" + name; }

// A small SentencePiece-style tokenizer.json: <unk> <s> ▁ a b ▁a ▁b.
json spm_tokenizer_json() {
  return json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false},
    "post_processor": null,
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": false,
              "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "b": 4, "\u2581a": 5, "\u2581b": 6},
              "merges": [["\u2581", "a"], ["\u2581", "b"]]}})");
}

// A small byte-level tokenizer.json (GPT-2 pattern) with every byte as a token.
json byte_level_tokenizer_json() {
  json vocab = json::object();
  int next = 256;  // GPT-2 byte alphabet: unprintable bytes map to U+0100...
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? uint32_t(b) : uint32_t(next++);
    std::string s;
    if (cp < 0x80) s += char(cp);
    else s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
    vocab[s] = b;
  }
  vocab["ab"] = 256;
  json doc = {{"added_tokens", json::array({{{"id", 257}, {"content", "<|end|>"}, {"special", true}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
  return doc;
}

Expected<tok::Tokenizer> from_json(const json& doc, const json& config = json::object()) {
  hf::TokenizerSource src;
  src.path = "tokenizer.json";
  src.json = doc;
  auto c = hf::parse_tokenizer_config(config, "tokenizer_config.json");
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (c) src.config = *c;
  return tok::Tokenizer::from_hf(src);
}

void expect_tokenizer_error(const json& doc, ErrorKind kind, const std::string& needle,
                            const json& config = json::object()) {
  auto t = from_json(doc, config);
  ASSERT_FALSE(t.ok()) << needle;
  EXPECT_EQ(t.status().kind(), kind) << t.status().message();
  EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("tokenizer"), std::string::npos) << t.status().message();
}

TEST(HfTokenizerJson, MetaspaceFirstAndAlways) {
  // Expected ids from tokenizers 0.23 (see the docs/hf.md notes on Metaspace).
  auto first = from_json(spm_tokenizer_json());
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->encode("a b", false, true), (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(first->encode("<s>a b", false, true), (std::vector<int32_t>{1, 3, 6}));
  EXPECT_EQ(first->encode("a <s>b", false, true), (std::vector<int32_t>{5, 2, 1, 4}));
  EXPECT_EQ(first->encode(" a", false, true), (std::vector<int32_t>{5}));
  EXPECT_EQ(first->encode("  a", false, true), (std::vector<int32_t>{2, 5}));
  json doc = spm_tokenizer_json();
  doc["pre_tokenizer"]["prepend_scheme"] = "always";
  auto always = from_json(doc);
  ASSERT_TRUE(always.ok()) << always.status().message();
  EXPECT_EQ(always->encode("<s>a b", false, true), (std::vector<int32_t>{1, 5, 6}));
  EXPECT_EQ(always->encode("a <s>b", false, true), (std::vector<int32_t>{5, 2, 1, 6}));
  EXPECT_EQ(always->encode("<s> a", false, true), (std::vector<int32_t>{1, 5}));
}

TEST(HfTokenizerJson, ByteLevelBasics) {
  auto t = from_json(byte_level_tokenizer_json(), json{{"eos_token", "<|end|>"}});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->encode("ab a<|end|>", false, true), (std::vector<int32_t>{256, ' ', 'a', 257}));
  EXPECT_EQ(t->decode(t->encode("x\xff y", false, false)), "x\xff y");
  EXPECT_TRUE(t->is_eog(257));
  EXPECT_FALSE(t->add_bos());
}

TEST(HfTokenizerJson, UnsupportedModel) {
  json doc = spm_tokenizer_json();
  doc["model"]["type"] = "Unigram";
  expect_tokenizer_error(doc, ErrorKind::unsupported, "model.type 'Unigram' is not supported");
  doc.erase("model");
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "'model' is missing");
}

TEST(HfTokenizerJson, UnknownSplitPattern) {
  json doc = byte_level_tokenizer_json();
  doc["pre_tokenizer"] = json::parse(R"({"type":"Sequence","pretokenizers":[
      {"type":"Split","pattern":{"Regex":"\\w+|\\s+"},"behavior":"Isolated","invert":false},
      {"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})");
  expect_tokenizer_error(doc, ErrorKind::unsupported, "not one of the known llama3 / qwen2 / gpt2 patterns");
}

TEST(HfTokenizerJson, UnsupportedPipelinePieces) {
  json doc = byte_level_tokenizer_json();
  doc["pre_tokenizer"]["add_prefix_space"] = true;
  expect_tokenizer_error(doc, ErrorKind::unsupported, "add_prefix_space");
  doc = byte_level_tokenizer_json();
  doc["normalizer"] = {{"type", "Lowercase"}};
  expect_tokenizer_error(doc, ErrorKind::unsupported, "normalizer {\"type\":\"Lowercase\"} is not supported");
  doc = byte_level_tokenizer_json();
  doc["post_processor"] = {{"type", "BertProcessing"}};
  expect_tokenizer_error(doc, ErrorKind::unsupported, "post_processor");
  doc = byte_level_tokenizer_json();
  doc["pre_tokenizer"] = nullptr;
  expect_tokenizer_error(doc, ErrorKind::unsupported, "neither a ByteLevel pre-tokenizer nor U+2581");
  doc = spm_tokenizer_json();
  doc["pre_tokenizer"]["split"] = true;
  expect_tokenizer_error(doc, ErrorKind::unsupported, "split=true");
}

TEST(HfTokenizerJson, BadVocabulary) {
  json doc = spm_tokenizer_json();
  doc["model"]["vocab"]["z"] = -1;
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "model.vocab['z'] = -1");
  doc = spm_tokenizer_json();
  doc["model"]["vocab"]["z"] = 3;
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "gives id 3 to both");
  doc = spm_tokenizer_json();
  doc["added_tokens"].push_back({{"id", 3}, {"content", "<x>"}, {"special", true}});
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "added token 3 '<x>' differs");
  doc = spm_tokenizer_json();
  doc["model"]["vocab"] = json::object();
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "model.vocab is missing");
}

TEST(HfTokenizerJson, BadMerges) {
  json doc = spm_tokenizer_json();
  doc["model"]["merges"].push_back({"a", "q"});
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "model.merges[2] ('a', 'q') uses or makes a token not in");
  doc["model"]["merges"] = json::array({"ab"});
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "model.merges[0] \"ab\" is not two tokens");
  doc["model"]["merges"] = json::array({42});
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "model.merges[0] is neither");
}

TEST(HfTokenizerJson, BadSpecials) {
  expect_tokenizer_error(spm_tokenizer_json(), ErrorKind::invalid_file, "bos_token '<bos>' is not a token",
                         json{{"bos_token", "<bos>"}});
  expect_tokenizer_error(spm_tokenizer_json(), ErrorKind::invalid_file, "add_bos_token is true but there is no",
                         json{{"add_bos_token", true}});
  json doc = spm_tokenizer_json();
  doc["model"]["byte_fallback"] = true;
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "no <0xNN> byte tokens");
  doc = spm_tokenizer_json();
  doc["model"]["byte_fallback"] = "yes";
  expect_tokenizer_error(doc, ErrorKind::invalid_file, "unexpected value");
}

TEST(HfTokenizerConfig, SpecialTokensAndTemplates) {
  auto c = hf::parse_tokenizer_config(json::parse(R"({"bos_token": {"content": "<s>", "lstrip": false},
      "eos_token": "</s>", "add_bos_token": false,
      "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})"),
                                      "tokenizer_config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(*c->bos_token, "<s>");
  EXPECT_EQ(*c->eos_token, "</s>");
  EXPECT_EQ(c->add_bos_token, false);
  EXPECT_EQ(c->chat_template, "D");
  auto bad = hf::parse_tokenizer_config(json{{"add_bos_token", "yes"}}, "tokenizer_config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("field 'add_bos_token' is \"yes\""), std::string::npos);
  bad = hf::parse_tokenizer_config(json{{"eos_token", 5}}, "tokenizer_config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("eos_token"), std::string::npos);
}

TEST(HfGenerationConfig, Fields) {
  auto g = hf::parse_generation_config(json{{"eos_token_id", 7}, {"temperature", 0.6}}, "generation_config.json");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->eos_token_ids, std::vector<int32_t>{7});
  EXPECT_FALSE(g->top_k.has_value());
  auto bad = hf::parse_generation_config(json{{"temperature", "hot"}}, "generation_config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("generation_config.json: field 'temperature' is \"hot\""), std::string::npos);
  bad = hf::parse_generation_config(json{{"eos_token_id", json::array({1, "x"})}}, "generation_config.json");
  ASSERT_FALSE(bad.ok());
  bad = hf::parse_generation_config(json{{"top_p", 1.5}}, "generation_config.json");
  ASSERT_FALSE(bad.ok());
}

// ---- config.json and weights: a copy of a fixture with one file changed ----

class FixtureCopy {
 public:
  FixtureCopy(const std::string& name, const std::string& tag) : dir_("hf_" + tag) {
    fs::copy(fixture_dir(name), dir_.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    config_ = json::parse(std::ifstream(dir_.path() / "config.json"));
  }
  json& config() { return config_; }
  Status load() {
    write_text(dir_.path() / "config.json", config_.dump());
    auto m = model::Model::load(dir_.str());
    return m.status();
  }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  json config_;
};

void expect_load_error(FixtureCopy& f, ErrorKind kind, const std::string& needle) {
  const Status st = f.load();
  ASSERT_FALSE(st.ok()) << needle;
  EXPECT_EQ(st.kind(), kind) << st.message();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

TEST(HfConfigMalformed, Architectures) {
  FixtureCopy f("qwen2", "arch");
  f.config().erase("architectures");
  expect_load_error(f, ErrorKind::invalid_file, "config.json: field 'architectures' is missing");
  f.config()["architectures"] = {"BertModel"};
  expect_load_error(f, ErrorKind::unsupported, "architecture 'BertModel' is not supported");
}

TEST(HfConfigMalformed, FieldTypesAndRanges) {
  FixtureCopy f("qwen2", "fields");
  f.config()["hidden_size"] = "64";
  expect_load_error(f, ErrorKind::invalid_file, "field 'hidden_size' is \"64\", expected an integer");
  f.config()["hidden_size"] = 64;
  f.config()["num_key_value_heads"] = 3;
  expect_load_error(f, ErrorKind::invalid_file, "3 does not divide num_attention_heads 4");
  f.config()["num_key_value_heads"] = 2;
  f.config()["num_hidden_layers"] = 0;
  expect_load_error(f, ErrorKind::invalid_file, "field 'num_hidden_layers' is 0");
  f.config()["num_hidden_layers"] = 2;
  f.config()["hidden_act"] = "relu";
  expect_load_error(f, ErrorKind::unsupported, "field 'hidden_act' 'relu' is not supported");
  f.config()["hidden_act"] = "silu";
  f.config()["layer_types"] = {"full_attention"};
  expect_load_error(f, ErrorKind::invalid_file, "field 'layer_types' is not a list of 2");
  f.config()["layer_types"] = {"full_attention", "chunked_attention"};
  expect_load_error(f, ErrorKind::unsupported, "entry 1 is \"chunked_attention\"");
}

TEST(HfConfigMalformed, Rope) {
  FixtureCopy f("llama", "rope");
  f.config()["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 10000.0}};
  expect_load_error(f, ErrorKind::unsupported, "field 'rope_parameters.rope_type' 'yarn' is not supported");
  f.config()["rope_parameters"] = {{"rope_type", "linear"}, {"factor", -1.0}};
  expect_load_error(f, ErrorKind::invalid_file, "field 'rope_parameters.factor' is -1");
  // The older spelling: rope_theta + rope_scaling {"type": ...}.
  f.config().erase("rope_parameters");
  f.config()["rope_theta"] = 50000.0;
  f.config()["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_TRUE(f.load().ok()) << f.load().message();
}

TEST(HfConfigMalformed, NotJson) {
  FixtureCopy f("qwen2", "notjson");
  write_text(f.dir().path() / "config.json", "{\"architectures\": [");
  auto m = model::Model::load(f.dir().str());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("config.json: not valid JSON"), std::string::npos) << m.status().message();
}

// Found by hf_config_fuzz / tokenizer_json_fuzz: a number too large for a double made
// nlohmann throw out_of_range (not parse_error), which escaped and aborted the process.
TEST(HfConfigMalformed, NumberOutOfRange) {
  for (const char* text : {R"({"model_max_length": 1000000000000000019E84624838656})", R"({"a": 2e934})", "[1e999]"}) {
    auto doc = hf::parse_json_text(text, "tokenizer_config.json");
    ASSERT_FALSE(doc.ok()) << text;
    EXPECT_EQ(doc.status().kind(), ErrorKind::invalid_file);
    EXPECT_NE(doc.status().message().find("tokenizer_config.json: not valid JSON"), std::string::npos);
  }
  FixtureCopy f("qwen2", "bignumber");
  write_text(f.dir().path() / "tokenizer_config.json", R"({"eos_token": "<|im_end|>", "model_max_length": 1e400})");
  auto m = model::Model::load(f.dir().str());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("tokenizer_config.json: not valid JSON"), std::string::npos) << m.status().message();
}

TEST(HfConfigMalformed, GenerationConfig) {
  FixtureCopy f("qwen2", "genconfig");
  write_text(f.dir().path() / "generation_config.json", R"({"top_k": -3})");
  expect_load_error(f, ErrorKind::invalid_file, "generation_config.json: field 'top_k' is -3");
}

TEST(HfWeightsMalformed, MissingLmHead) {
  FixtureCopy f("qwen2", "lmhead");
  f.config()["tie_word_embeddings"] = false;
  expect_load_error(f, ErrorKind::invalid_file, "missing tensor 'lm_head.weight'");
}

TEST(HfWeightsMalformed, VocabSizeDisagrees) {
  FixtureCopy f("qwen2", "vocab");
  f.config()["vocab_size"] = 600;
  expect_load_error(f, ErrorKind::invalid_file, "tensor 'model.embed_tokens.weight' has shape [64, 512], expected [64, 600]");
  f.config()["vocab_size"] = 100;
  expect_load_error(f, ErrorKind::invalid_file, "tokenizer has 512 tokens but vocab_size is only 100");
}

TEST(HfWeightsMalformed, MissingLayerTensor) {
  FixtureCopy f("mistral", "layer");
  f.config()["num_hidden_layers"] = 3;
  expect_load_error(f, ErrorKind::invalid_file, "missing tensor 'model.layers.2.input_layernorm.weight'");
}

TEST(HfWeightsMalformed, UnusableDtype) {
  FixtureCopy f("qwen2", "dtype");
  ember_test::SafetensorsBuilder b;
  b.tensors.push_back(ember_test::st_tensor("model.embed_tokens.weight", "I32", {512, 64}));
  ember_test::write_file(f.dir().path() / "model.safetensors", b.build());
  expect_load_error(f, ErrorKind::unsupported, "tensor 'model.embed_tokens.weight' has dtype I32");
}

}  // namespace
}  // namespace ember
