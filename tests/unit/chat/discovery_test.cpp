// Chat template discovery: precedence of the sources, named variants, overrides, errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "chat/discovery.h"
#include "unit/formats/gguf_builder.h"

namespace ember::chat {
namespace {

namespace fs = std::filesystem;

class Discovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ember_discovery_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  // A GGUF image with string metadata (kept alive by the fixture).
  const gguf::File* gguf(const std::vector<std::pair<std::string, std::string>>& kv) {
    ember_test::GgufBuilder b;
    b.header(3, 0, kv.size());
    for (const auto& [k, v] : kv) b.kv_string(k, v);
    b.pad_to(32);
    bytes_ = b.bytes;
    auto f = gguf::File::parse(bytes_, "test.gguf");
    EXPECT_TRUE(f.ok()) << f.status().message();
    file_ = std::move(*f);
    return &file_;
  }
  Expected<FoundTemplate> find(const gguf::File* g, const std::string& path, const std::string& override_spec = "") {
    TemplateQuery q;
    q.gguf = g;
    q.model_path = path;
    q.override_spec = override_spec;
    return find_chat_template(q);
  }

  fs::path dir_;
  std::vector<uint8_t> bytes_;
  gguf::File file_;
};

TEST_F(Discovery, GgufMetadataComesFirstThenTheJinjaBesideIt) {
  write("chat_template.jinja", "JINJA");
  write("tokenizer_config.json", R"({"chat_template": "CONFIG"})");  // not read for a GGUF file
  const std::string path = (dir_ / "m.gguf").string();
  auto t = find(gguf({{"tokenizer.chat_template", "GGUF"}, {"tokenizer.chat_template.tool_use", "TOOLS"}}), path);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "GGUF");
  EXPECT_FALSE(t->fallback);
  auto named = find(&file_, path, "tool_use");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->source, "TOOLS");
  auto beside = find(gguf({{"general.name", "x"}}), path);
  ASSERT_TRUE(beside.ok());
  EXPECT_EQ(beside->source, "JINJA");
  EXPECT_EQ(beside->origin, (dir_ / "chat_template.jinja").string());
}

TEST_F(Discovery, HfDirectoryReadsTokenizerConfigStringOrNamedList) {
  write("tokenizer_config.json", R"({"chat_template": "CONFIG", "bos_token": "<s>"})");
  write("chat_template.jinja", "JINJA");
  auto t = find(nullptr, dir_.string());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "CONFIG");
  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "DEF"}]})");
  t = find(nullptr, (dir_ / "config.json").string());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "DEF");
  t = find(nullptr, dir_.string(), "tool_use");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "TOOLS");
  TemplateQuery q;
  q.model_path = dir_.string();
  auto names = chat_template_names(q);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"tool_use", "default"}));
}

TEST_F(Discovery, StandaloneJinjaAndAdditionalTemplates) {
  write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  write("chat_template.jinja", "JINJA");
  write("additional_chat_templates/rag.jinja", "RAG");
  auto t = find(nullptr, dir_.string());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "JINJA");
  t = find(nullptr, dir_.string(), "rag");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "RAG");
}

TEST_F(Discovery, OverrideFileWinsAndUnknownNamesFailListingTheNames) {
  write("mine.jinja", "MINE");
  auto t = find(gguf({{"tokenizer.chat_template", "GGUF"}}), (dir_ / "m.gguf").string(), (dir_ / "mine.jinja").string());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source, "MINE");
  auto bad = find(&file_, (dir_ / "m.gguf").string(), "nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::not_found);
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("default"), std::string::npos);
  auto chatml = find(&file_, (dir_ / "m.gguf").string(), "chatml");
  ASSERT_TRUE(chatml.ok());
  EXPECT_EQ(chatml->source, chatml_template());
}

TEST_F(Discovery, FallsBackToChatMlOnlyWhenNothingExists) {
  auto t = find(nullptr, dir_.string());
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->fallback);
  EXPECT_EQ(t->source, chatml_template());
  auto g = find(gguf({{"general.name", "x"}}), (dir_ / "m.gguf").string());
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->fallback);
}

TEST_F(Discovery, MalformedConfigIsAnErrorNamingTheFile) {
  write("tokenizer_config.json", "{not json");
  auto t = find(nullptr, dir_.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().kind(), ErrorKind::invalid_file);
  EXPECT_NE(t.status().message().find("tokenizer_config.json"), std::string::npos);
  write("tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
  t = find(nullptr, dir_.string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("entry"), std::string::npos);
  write("tokenizer_config.json", R"({"chat_template": 7})");
  EXPECT_FALSE(find(nullptr, dir_.string()).ok());
}

}  // namespace
}  // namespace ember::chat
