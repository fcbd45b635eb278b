// The GPU decoder on the real models, when present (they are not carried to the GPU
// machine by default): logits vs the Hugging Face fixtures and vs the CPU decoder.
// Named Gpu*, not Cuda*: scripts/gpu-check.sh treats a skipped Cuda* test as an error,
// and these skip whenever the models are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "kernels/cuda_test_util.h"
#include "model/decoder.h"
#include "model/gpu/gpu_decoder.h"
#include "model/model.h"
#include "unit/formats/test_paths.h"

namespace ember {
namespace {

void check_real_model(const char* gguf_name, const char* fixture_name) {
  EMBER_REQUIRE_CUDA_DEVICE();
  EMBER_MODEL_OR_SKIP(path, gguf_name);
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/logits/" + fixture_name);
  ASSERT_TRUE(in.good());
  const auto fx = nlohmann::json::parse(in);
  const int n_vocab = (*m)->spec.n_vocab;
  model::gpu::GpuDecoderOptions o;
  o.n_ctx = 1024;
  o.verbose = false;
  int positions = 0, top1_ref = 0, top1_cpu = 0;
  double max_err_cpu = 0;
  for (const auto& prompt : fx["prompts"]) {
    const auto ids = prompt["ids"].get<std::vector<int32_t>>();
    auto gpu = model::gpu::make_gpu_decoder((*m)->spec, (*m)->weights, o);
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    model::CpuDecoder cpu((*m)->spec, (*m)->weights, 1024, ThreadPool::global());
    std::vector<float> lg, lc;
    ASSERT_TRUE((*gpu)->forward(ids, 0, true, lg).ok());
    ASSERT_TRUE(cpu.forward(ids, 0, true, lc).ok());
    for (size_t t = 0; t < ids.size(); ++t) {
      const std::vector<float> g(lg.begin() + long(t * n_vocab), lg.begin() + long((t + 1) * n_vocab));
      const std::vector<float> c(lc.begin() + long(t * n_vocab), lc.begin() + long((t + 1) * n_vocab));
      const int32_t gi = int32_t(std::max_element(g.begin(), g.end()) - g.begin());
      const int32_t ci = int32_t(std::max_element(c.begin(), c.end()) - c.begin());
      const auto& top = prompt["top_ids"][t];
      const double gap = prompt["top_logits"][t][0].get<double>() - prompt["top_logits"][t][1].get<double>();
      top1_ref += gi == top[0].get<int32_t>() || (gap < 1e-3 && gi == top[1].get<int32_t>());
      top1_cpu += gi == ci;
      max_err_cpu = std::max(max_err_cpu, cuda_test::normalised_error(g, c));
      positions++;
    }
  }
  std::printf("%s on GPU: top-1 vs reference %d/%d, vs CPU %d/%d, max normalised error vs CPU %.2e\n", gguf_name,
              top1_ref, positions, top1_cpu, positions, max_err_cpu);
  EXPECT_GE(double(top1_ref) / positions, 0.99);
  EXPECT_GE(double(top1_cpu) / positions, 0.97);
  EXPECT_LT(max_err_cpu, 5e-2);
}

TEST(GpuRealModel, SmolLM2MatchesReferenceAndCpu) {
  check_real_model("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.json");
}
TEST(GpuRealModel, Gemma3MatchesReferenceAndCpu) { check_real_model("gemma-3-270m-q4_k_m.gguf", "gemma3.json"); }

}  // namespace
}  // namespace ember
