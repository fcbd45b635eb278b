// Real models against Hugging Face transformers fp32 reference logits
// (tests/fixtures/logits/*.json, made by scripts/make_logit_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "unit/formats/test_paths.h"

namespace ember {
namespace {

nlohmann::json load_fixture(const std::string& name) {
  std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/logits/" + name);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  return nlohmann::json::parse(in);
}

struct Agreement {
  int positions = 0, top1_same = 0;
  double max_abs_err = 0.0;  // over the reference's top-20 ids, after removing the mean offset
};

// Compares ember's logits with the reference top-k at every position of one prompt.
void compare_prompt(model::Decoder& dec, const nlohmann::json& prompt, int n_vocab, Agreement& a) {
  const auto ids = prompt["ids"].get<std::vector<int32_t>>();
  std::vector<float> logits;
  ASSERT_TRUE(dec.forward(ids, 0, true, logits).ok());
  const auto& top_ids = prompt["top_ids"];
  const auto& top_logits = prompt["top_logits"];
  ASSERT_EQ(top_ids.size(), ids.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* row = &logits[t * size_t(n_vocab)];
    const int32_t ours = int32_t(std::max_element(row, row + n_vocab) - row);
    const int32_t ref = top_ids[t][0].get<int32_t>();
    a.positions++;
    // A tie within 1e-3 between the reference's top-2 is not a disagreement.
    const double ref_gap = top_logits[t][0].get<double>() - top_logits[t][1].get<double>();
    a.top1_same += ours == ref || (ref_gap < 1e-3 && ours == top_ids[t][1].get<int32_t>());
    for (size_t j = 0; j < top_ids[t].size(); ++j) {
      const double err = std::fabs(row[top_ids[t][j].get<int32_t>()] - top_logits[t][j].get<double>());
      a.max_abs_err = std::max(a.max_abs_err, err);
    }
  }
}

void check_model(const char* gguf_name, const char* fixture_name, double max_err_bound) {
  const std::string path = ember_test::model_path(gguf_name);
  if (path.empty()) GTEST_SKIP() << gguf_name << " not found";
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const auto fx = load_fixture(fixture_name);
  Agreement a;
  for (const auto& prompt : fx["prompts"]) {
    model::CpuDecoder dec((*m)->spec, (*m)->weights, 1024, ThreadPool::global());
    compare_prompt(dec, prompt, (*m)->spec.n_vocab, a);
  }
  const double top1 = double(a.top1_same) / a.positions;
  std::printf("%s: top-1 agreement %.4f over %d positions, max |err| on top-20 %.4f\n", gguf_name, top1, a.positions,
              a.max_abs_err);
  EXPECT_GE(top1, 0.99);
  EXPECT_LT(a.max_abs_err, max_err_bound);
}

void check_greedy(const char* gguf_name, const char* fixture_name, int min_same) {
  const std::string path = ember_test::model_path(gguf_name);
  if (path.empty()) GTEST_SKIP() << gguf_name << " not found";
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const auto fx = load_fixture(fixture_name);
  const auto& g = fx["greedy"];
  const auto prompt = fx["prompts"][g["prompt_index"].get<size_t>()]["ids"].get<std::vector<int32_t>>();
  const auto ref = g["ids"].get<std::vector<int32_t>>();
  model::CpuDecoder dec((*m)->spec, (*m)->weights, 1024, ThreadPool::global());
  std::vector<float> logits;
  ASSERT_TRUE(dec.forward(prompt, 0, false, logits).ok());
  int same = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next != ref[i]) break;
    ++same;
    const int32_t one[1] = {next};
    ASSERT_TRUE(dec.forward(one, int(prompt.size() + i), false, logits).ok());
  }
  std::printf("%s: greedy continuation identical for %d of %zu tokens\n", gguf_name, same, ref.size());
  EXPECT_GE(same, min_same);
}

TEST(ModelLogits, SmolLM2MatchesTransformers) { check_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.json", 0.1); }
TEST(ModelLogits, Gemma3MatchesTransformers) { check_model("gemma-3-270m-q4_k_m.gguf", "gemma3.json", 0.1); }
TEST(ModelGreedy, SmolLM2MatchesTransformers) { check_greedy("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.json", 32); }
TEST(ModelGreedy, Gemma3MatchesTransformers) { check_greedy("gemma-3-270m-q4_k_m.gguf", "gemma3.json", 32); }

}  // namespace
}  // namespace ember
