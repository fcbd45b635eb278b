// BatchEngine on the GPU with the real models (SmolLM2, Gemma-3), when present: 16 mixed
// requests (greedy and seeded, penalties, logit_bias, prompt lengths 5..300) give the same
// tokens alone and batched, also under preemption in a small pool, and every block is
// released afterwards. Named Gpu*, not Cuda*: they skip whenever the models are absent
// (scripts/gpu-check.sh treats a skipped Cuda* test as an error).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <map>
#include <mutex>

#include "kernels/cuda_test_util.h"
#include "model/gpu/gpu_batch_decoder.h"
#include "model/model.h"
#include "runtime/batch_engine.h"
#include "unit/formats/test_paths.h"

namespace ember::runtime {
namespace {

struct Result {
  std::vector<int32_t> tokens;
  EngineEvent finish;
  bool done = false;
};

class Collector {
 public:
  EventFn callback(int key) {
    return [this, key](const EngineEvent& e) {
      std::lock_guard lock(mu_);
      Result& r = results_[key];
      if (e.kind == EngineEvent::Kind::finish) {
        r.finish = e;
        r.done = true;
        cv_.notify_all();
      } else if (e.token >= 0) {
        r.tokens.push_back(e.token);
      }
    };
  }
  std::map<int, Result> wait(size_t n) {
    std::unique_lock lock(mu_);
    const bool ok = cv_.wait_for(lock, std::chrono::minutes(5), [&] {
      size_t done = 0;
      for (const auto& [k, r] : results_) done += r.done;
      return done >= n;
    });
    EXPECT_TRUE(ok) << "requests did not finish";
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Result> results_;
};

std::vector<EngineRequest> mixed_requests(int n) {
  std::vector<EngineRequest> out;
  for (int i = 0; i < n; ++i) {
    EngineRequest r;
    // token ids (any model's vocabulary has them): 5..300 tokens, shared starts between some
    for (int j = 0; j < 5 + (i * 37) % 296; ++j) r.prompt.push_back(int32_t(((i % 3) * 131 + j * 17) % 1000 + 100));
    r.max_tokens = 24 + i % 5;
    r.ignore_eos = true;
    r.sampling.temperature = i % 3 == 2 ? 0.8f : 0.0f;
    r.sampling.seed = 77 + uint64_t(i);
    if (i % 4 == 1) r.sampling.repeat_penalty = 1.2f;
    if (i % 5 == 3) r.logit_bias = {{13, 1.5f}};
    out.push_back(r);
  }
  return out;
}

std::unique_ptr<BatchEngine> gpu_engine(const model::Model& m, BatchEngineOptions o) {
  model::gpu::GpuBatchOptions g;
  g.n_ctx = o.n_ctx;
  g.max_seqs = o.max_seqs;
  g.max_tokens = std::max(o.token_budget, o.max_seqs);
  g.verbose = false;
  auto dec = model::gpu::make_gpu_batch_decoder(m.spec, m.weights, g);
  EXPECT_TRUE(dec.ok()) << dec.status().message();
  if (!dec.ok()) return nullptr;
  auto e = BatchEngine::create(m, std::move(*dec), o);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? std::move(*e) : nullptr;
}

void check_path(const std::string& path) {
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const auto reqs = mixed_requests(16);
  BatchEngineOptions o;
  o.n_ctx = 512;
  o.max_seqs = 16;
  o.token_budget = 256;  // chunked prefill next to decodes
  std::vector<Result> alone;
  {
    auto engine = gpu_engine(**m, o);  // one request at a time
    ASSERT_TRUE(engine);
    for (size_t i = 0; i < reqs.size(); ++i) {
      Collector c;
      ASSERT_TRUE(engine->submit(reqs[i], c.callback(0)).ok());
      alone.push_back(c.wait(1).at(0));
    }
  }
  auto engine = gpu_engine(**m, o);  // a fresh cache: no prefix hits from the runs alone
  ASSERT_TRUE(engine);
  Collector c;
  for (size_t i = 0; i < reqs.size(); ++i) ASSERT_TRUE(engine->submit(reqs[i], c.callback(int(i))).ok());
  const auto batched = c.wait(reqs.size());
  int same = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Result& b = batched.at(int(i));
    EXPECT_EQ(b.finish.reason, FinishReason::length) << "request " << i << ": " << b.finish.error;
    EXPECT_EQ(alone[i].tokens.size(), size_t(reqs[i].max_tokens));
    EXPECT_EQ(b.tokens, alone[i].tokens) << "request " << i << " differs alone and batched";
    same += b.tokens == alone[i].tokens;
  }
  std::printf("%s: %d/%zu requests identical alone and in a batch of 16\n", path.c_str(), same, reqs.size());
  EXPECT_EQ(engine->stats().kv_blocks_used, 0u);
  engine.reset();

  // A pool too small for all of them at once: preemption, same tokens
  o.n_blocks = 60;  // 960 tokens for ~2,800
  auto small = gpu_engine(**m, o);
  ASSERT_TRUE(small);
  Collector c2;
  for (size_t i = 0; i < reqs.size(); ++i) ASSERT_TRUE(small->submit(reqs[i], c2.callback(int(i))).ok());
  const auto preempted = c2.wait(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_EQ(preempted.at(int(i)).tokens, alone[i].tokens) << "request " << i << " differs after preemption";
  EXPECT_GT(small->stats().preemptions, 0u);
  EXPECT_EQ(small->stats().kv_blocks_used, 0u);
}

void check_model(const char* file) {
  EMBER_REQUIRE_CUDA_DEVICE();
  EMBER_MODEL_OR_SKIP(path, file);
  check_path(path);
}

TEST(GpuBatchEngine, SmolLM2BatchedEqualsAlone) { check_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(GpuBatchEngine, Gemma3BatchedEqualsAlone) { check_model("gemma-3-270m-q4_k_m.gguf"); }

// Any other models, e.g. `ember gen-random` ones on the GPU machine:
// EMBER_BATCH_TEST_MODELS=a.gguf,b.gguf
TEST(GpuBatchEngine, ModelsFromEnvironmentBatchedEqualAlone) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const char* env = std::getenv("EMBER_BATCH_TEST_MODELS");
  if (env == nullptr || env[0] == '\0') GTEST_SKIP() << "EMBER_BATCH_TEST_MODELS is not set";
  std::string list = env;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string path = list.substr(at, comma - at);
    if (!path.empty()) {
      SCOPED_TRACE(path);
      check_path(path);
    }
    at = comma + 1;
  }
}

}  // namespace
}  // namespace ember::runtime
