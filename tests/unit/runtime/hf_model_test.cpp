// Tiny Hugging Face model directories (tests/fixtures/hf/, made by scripts/make_hf_fixtures.py)
// load and match transformers' fp32 logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "model/archs/hf.h"
#include "model/decoder.h"
#include "model/model.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

std::string fixture_dir(const std::string& name) { return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/hf/" + name; }

nlohmann::json load_reference(const std::string& name) {
  std::ifstream in(fixture_dir(name) + "/reference.json");
  EXPECT_TRUE(in.good()) << "missing " << name << "/reference.json";
  return nlohmann::json::parse(in);
}

struct Agreement {
  int positions = 0, top1_same = 0;
  double max_abs_err = 0.0;
};

Agreement compare(const model::Model& m, const nlohmann::json& ref) {
  Agreement a;
  const auto ids = ref["ids"].get<std::vector<int32_t>>();
  model::CpuDecoder dec(m.spec, m.weights, 256, ThreadPool::global());
  std::vector<float> logits;
  const Status st = dec.forward(ids, 0, true, logits);
  EXPECT_TRUE(st.ok()) << st.message();
  if (!st.ok()) return a;
  const int n_vocab = m.spec.n_vocab;
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* row = &logits[t * size_t(n_vocab)];
    const int32_t ours = int32_t(std::max_element(row, row + n_vocab) - row);
    const auto& top_ids = ref["top_ids"][t];
    const auto& top = ref["top_logits"][t];
    const double gap = top[0].get<double>() - top[1].get<double>();
    a.positions++;
    a.top1_same += ours == top_ids[0].get<int32_t>() || (gap < 1e-4 && ours == top_ids[1].get<int32_t>());
    for (size_t j = 0; j < top_ids.size(); ++j)
      a.max_abs_err = std::max(a.max_abs_err, std::fabs(row[top_ids[j].get<int32_t>()] - top[j].get<double>()));
  }
  return a;
}

void check_model(const std::string& name, const std::string& arch, double max_err) {
  auto m = model::Model::load(fixture_dir(name));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->spec.arch, arch);
  const auto ref = load_reference(name);
  // The HF tokenizer's ids for the prompt (BOS included) are ours too.
  EXPECT_EQ((*m)->tokenizer.encode(ref["prompt"].get<std::string>(), true, true), ref["ids"].get<std::vector<int32_t>>());
  const Agreement a = compare(**m, ref);
  std::printf("%s: top-1 %d/%d, max |err| over top-%d %.2e\n", name.c_str(), a.top1_same, a.positions,
              ref["top_k"].get<int>(), a.max_abs_err);
  EXPECT_EQ(a.top1_same, a.positions);
  EXPECT_LT(a.max_abs_err, max_err);
}

TEST(HfModel, LlamaShardedBf16) { check_model("llama", "llama", 1e-4); }
TEST(HfModel, MistralSlidingWindow) { check_model("mistral", "mistral", 1e-4); }
TEST(HfModel, Qwen2Biases) { check_model("qwen2", "qwen2", 1e-4); }
TEST(HfModel, Qwen3QkNormF16) { check_model("qwen3", "qwen3", 1e-4); }
TEST(HfModel, Gemma3) { check_model("gemma3", "gemma3", 1e-4); }

TEST(HfModel, SpecFromConfig) {
  auto m = model::Model::load(fixture_dir("gemma3") + "/config.json");  // the config.json path works too
  ASSERT_TRUE(m.ok()) << m.status().message();
  const model::ModelSpec& s = (*m)->spec;
  ASSERT_EQ(s.n_layers, 3);
  EXPECT_EQ(s.layers[0].window, 8);
  EXPECT_EQ(s.layers[2].window, 0);
  EXPECT_EQ(s.layers[0].rope_base, 10000.0f);
  EXPECT_EQ(s.layers[2].rope_base, 1000000.0f);
  EXPECT_FLOAT_EQ(s.attn_scale, 1.0f / std::sqrt(24.0f));
  EXPECT_EQ(s.final_softcap, 30.0f);
  EXPECT_TRUE(s.qk_norm && s.post_norms && s.embed_scale);
  EXPECT_EQ(s.rope_style, cpu::RopeStyle::neox);
  EXPECT_EQ((*m)->weights.output.data, (*m)->weights.token_embd.data);  // tied

  auto llama = model::Model::load(fixture_dir("llama"));
  ASSERT_TRUE(llama.ok()) << llama.status().message();
  EXPECT_FLOAT_EQ((*llama)->spec.layers[0].rope_scale, 0.5f);
  EXPECT_EQ((*llama)->spec.layers[0].rope_base, 50000.0f);
  EXPECT_NE((*llama)->weights.output.data, (*llama)->weights.token_embd.data);
}

TEST(HfModel, GenerationConfigAndTemplate) {
  auto m = model::Model::load(fixture_dir("llama"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  const hf::GenerationConfig& g = (*m)->generation;
  EXPECT_TRUE(g.present);
  EXPECT_EQ(g.do_sample, true);
  EXPECT_NEAR(*g.temperature, 0.7, 1e-9);
  EXPECT_NEAR(*g.top_p, 0.9, 1e-9);
  EXPECT_EQ(*g.top_k, 40);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{2, 0}));
  EXPECT_NE((*m)->chat_template.find("<|im_start|>"), std::string::npos);
  EXPECT_TRUE((*m)->tokenizer.is_eog(2));
}

}  // namespace
}  // namespace ember
