// Architecture config -> ModelSpec mapping and weight-shape validation, on GGUF files
// built in memory.
#include <gtest/gtest.h>

#include <string>

#include "formats/gguf/gguf.h"
#include "model/archs/arch.h"
#include "model/weights.h"
#include "unit/formats/gguf_builder.h"

namespace ember::model {
namespace {

using ember_test::GgufBuilder;

struct Config {
  std::string arch = "llama";
  uint32_t n_layers = 2, n_embd = 64, n_ff = 96, n_heads = 4, n_kv_heads = 2, n_vocab = 32;
  int64_t window = -1;            // -1: key absent
  std::string rope_scaling;       // empty: key absent
  bool omit_block_count = false;
};

// A file with the config keys and only a token embedding (enough for spec parsing).
std::vector<uint8_t> make_file(const Config& c) {
  ember_test::FileSpec fs;
  const std::string a = c.arch;
  fs.kv = [&c, a](GgufBuilder& b) {
    b.kv_string("general.architecture", a);
    if (!c.omit_block_count) b.kv_u32(a + ".block_count", c.n_layers);
    b.kv_u32(a + ".embedding_length", c.n_embd);
    b.kv_u32(a + ".feed_forward_length", c.n_ff);
    b.kv_u32(a + ".attention.head_count", c.n_heads);
    b.kv_u32(a + ".attention.head_count_kv", c.n_kv_heads);
    b.kv_f32(a + ".rope.freq_base", 500000.0f);
    if (c.window >= 0) b.kv_u32(a + ".attention.sliding_window", uint32_t(c.window));
    if (!c.rope_scaling.empty()) b.kv_string(a + ".rope.scaling.type", c.rope_scaling);
  };
  fs.n_kv = 7 - (c.omit_block_count ? 1 : 0) + (c.window >= 0) + !c.rope_scaling.empty();
  fs.tensors = {{"token_embd.weight", {c.n_embd, c.n_vocab}, ember_test::tt::F32}};
  return ember_test::build_file(fs).bytes;
}

Expected<ModelSpec> spec_of(const Config& c, std::vector<uint8_t>& storage) {
  storage = make_file(c);
  auto f = gguf::File::parse(storage, "test.gguf");
  if (!f) return f.status();
  return spec_from_gguf(*f);
}

TEST(Spec, LlamaQwenFamily) {
  std::vector<uint8_t> buf;
  Config c;
  auto llama = spec_of(c, buf);
  ASSERT_TRUE(llama.ok()) << llama.status().message();
  EXPECT_EQ(llama->rope_style, cpu::RopeStyle::interleaved);
  EXPECT_FALSE(llama->qk_norm);
  EXPECT_EQ(llama->n_vocab, 32);
  EXPECT_EQ(llama->layers[1].head_dim, 16);
  EXPECT_EQ(llama->layers[1].n_kv_heads, 2);
  EXPECT_EQ(llama->layers[0].rope_base, 500000.0f);
  c.arch = "qwen3";
  auto qwen3 = spec_of(c, buf);
  ASSERT_TRUE(qwen3.ok()) << qwen3.status().message();
  EXPECT_EQ(qwen3->rope_style, cpu::RopeStyle::neox);
  EXPECT_TRUE(qwen3->qk_norm);
  c.arch = "mistral";
  c.window = 4096;
  auto mistral = spec_of(c, buf);
  ASSERT_TRUE(mistral.ok()) << mistral.status().message();
  EXPECT_EQ(mistral->layers[0].window, 4096);
}

TEST(Spec, Gemma3LayerPattern) {
  std::vector<uint8_t> buf;
  Config c;
  c.arch = "gemma3";
  c.n_layers = 12;
  c.window = 512;
  auto s = spec_of(c, buf);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->embed_scale && s->post_norms && s->qk_norm);
  EXPECT_EQ(s->act, Activation::gelu_tanh);
  for (int il = 0; il < 12; ++il) {
    const bool global = il == 5 || il == 11;
    EXPECT_EQ(s->layers[size_t(il)].window, global ? 0 : 512) << il;
    EXPECT_EQ(s->layers[size_t(il)].rope_base, global ? 500000.0f : 10000.0f) << il;
  }
  EXPECT_FLOAT_EQ(s->attn_scale, 0.25f);  // 1/sqrt(head_dim 16)
}

TEST(Spec, ClearErrors) {
  std::vector<uint8_t> buf;
  auto expect_error = [&](const Config& c, const std::string& needle) {
    auto s = spec_of(c, buf);
    ASSERT_FALSE(s.ok()) << needle;
    EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status().message();
  };
  Config c;
  c.arch = "gpt5";
  expect_error(c, "architecture 'gpt5' is not supported");
  c = Config{};
  c.omit_block_count = true;
  expect_error(c, "missing metadata 'llama.block_count'");
  c = Config{};
  c.n_kv_heads = 3;
  expect_error(c, "not a multiple");
  c = Config{};
  c.n_heads = 0;
  expect_error(c, "llama.attention.head_count");
  c = Config{};
  c.rope_scaling = "yarn";
  expect_error(c, "rope scaling 'yarn'");
}

TEST(Weights, MissingTensorAndWrongShapeAreNamed) {
  std::vector<uint8_t> buf;
  Config c;
  auto spec = spec_of(c, buf);
  ASSERT_TRUE(spec.ok());
  auto f = gguf::File::parse(buf, "test.gguf");
  ASSERT_TRUE(f.ok());
  auto w = load_weights(*f, *spec);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("missing tensor 'output_norm.weight'"), std::string::npos)
      << w.status().message();

  ember_test::FileSpec fs;
  fs.kv = [](GgufBuilder& b) { b.kv_string("general.architecture", "llama"); };
  fs.n_kv = 1;
  fs.tensors = {{"token_embd.weight", {64, 32}, ember_test::tt::F32},
                {"output_norm.weight", {64}, ember_test::tt::F32},
                {"blk.0.attn_norm.weight", {64}, ember_test::tt::F32},
                {"blk.0.attn_q.weight", {64, 48}, ember_test::tt::F32}};
  const auto bytes = ember_test::build_file(fs).bytes;
  auto f2 = gguf::File::parse(bytes, "shape.gguf");
  ASSERT_TRUE(f2.ok()) << f2.status().message();
  auto w2 = load_weights(*f2, *spec);
  ASSERT_FALSE(w2.ok());
  EXPECT_NE(w2.status().message().find("'blk.0.attn_q.weight' has shape [64, 48], expected [64, 64]"),
            std::string::npos)
      << w2.status().message();
}

}  // namespace
}  // namespace ember::model
