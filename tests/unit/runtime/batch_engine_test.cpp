// BatchEngine on SmolLM2: the same tokens as SerialEngine alone (greedy and seeded
// sampling), under preemption in a tiny KV pool, with prefix-cache hits; requests too
// big for the pool finish with an error; cancellation frees every block.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/model.h"
#include "runtime/batch_engine.h"
#include "runtime/serial_engine.h"
#include "unit/formats/test_paths.h"

namespace ember::runtime {
namespace {

struct Result {
  std::vector<int32_t> tokens;
  std::string text;
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
        return;
      }
      if (e.token >= 0) r.tokens.push_back(e.token);
      r.text += e.text;
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
  size_t n_tokens(int key) {
    std::lock_guard lock(mu_);
    return results_[key].tokens.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Result> results_;
};

class BatchEngineTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = ember_test::model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    if (path_.empty()) GTEST_SKIP() << "SmolLM2 not found";
    auto m = model::Model::load(path_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(*m);
  }

  // Mixed requests: different prompt lengths, greedy and seeded sampling, penalties.
  std::vector<EngineRequest> requests(int n, int max_tokens) {
    const char* texts[] = {"The capital of France is", "Once upon a time, in a small village by the sea,",
                           "def fibonacci(n):", "List three colours:",
                           "Water boils at a temperature of one hundred degrees Celsius at sea level, and"};
    std::vector<EngineRequest> out;
    for (int i = 0; i < n; ++i) {
      EngineRequest r;
      r.prompt = model_->tokenizer.encode(std::string(texts[i % 5]) + std::string(size_t(i), '!'), true, false);
      r.max_tokens = max_tokens;
      r.ignore_eos = true;
      r.sampling.temperature = i % 3 == 2 ? 0.9f : 0.0f;
      r.sampling.seed = 1000 + uint64_t(i);
      if (i % 4 == 1) r.sampling.repeat_penalty = 1.3f;
      if (i % 5 == 3) r.logit_bias = {{13, 2.0f}};
      out.push_back(r);
    }
    return out;
  }

  // Every request alone through SerialEngine.
  std::vector<Result> serial(const std::vector<EngineRequest>& reqs) {
    model::CpuDecoder dec(model_->spec, model_->weights, 512, ThreadPool::global());
    SerialEngineOptions so;
    so.reuse_prefix = false;
    SerialEngine engine(*model_, dec, so);
    std::vector<Result> out;
    for (size_t i = 0; i < reqs.size(); ++i) {
      Collector c;
      EXPECT_TRUE(engine.submit(reqs[i], c.callback(0)).ok());
      out.push_back(c.wait(1)[0]);
    }
    return out;
  }

  std::map<int, Result> batched(BatchEngine& engine, const std::vector<EngineRequest>& reqs) {
    Collector c;
    for (size_t i = 0; i < reqs.size(); ++i) EXPECT_TRUE(engine.submit(reqs[i], c.callback(int(i))).ok());
    return c.wait(reqs.size());
  }

  std::unique_ptr<BatchEngine> make(BatchEngineOptions o) {
    auto e = BatchEngine::create(*model_, ThreadPool::global(), o);
    EXPECT_TRUE(e.ok()) << e.status().message();
    return e.ok() ? std::move(*e) : nullptr;
  }

  std::string path_;
  std::unique_ptr<model::Model> model_;
};

void expect_same(const std::vector<Result>& ref, const std::map<int, Result>& got) {
  ASSERT_EQ(ref.size(), got.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const Result& g = got.at(int(i));
    EXPECT_EQ(g.finish.reason, ref[i].finish.reason) << "request " << i << ": " << g.finish.error;
    EXPECT_EQ(g.tokens, ref[i].tokens) << "request " << i;
    EXPECT_EQ(g.text, ref[i].text) << "request " << i;
    EXPECT_EQ(g.finish.n_completion, ref[i].finish.n_completion);
  }
}

TEST_F(BatchEngineTest, SameTokensAsSerialEngineAloneAndInABatch) {
  const auto reqs = requests(10, 16);
  const auto ref = serial(reqs);
  BatchEngineOptions o;
  o.n_ctx = 512;
  o.max_seqs = 8;
  o.token_budget = 40;  // forces chunked prefill next to decodes
  auto engine = make(o);
  ASSERT_TRUE(engine);
  expect_same(ref, batched(*engine, reqs));
  EXPECT_EQ(engine->stats().preemptions, 0u);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0u);
  EXPECT_EQ(engine->stats().running, 0);
}

TEST_F(BatchEngineTest, PreemptionInATinyPoolKeepsTheOutput) {
  const auto reqs = requests(6, 40);
  const auto ref = serial(reqs);
  BatchEngineOptions o;
  o.n_ctx = 512;
  o.max_seqs = 6;
  o.n_blocks = 10;  // 160 tokens for 6 requests of ~20-60 tokens each
  auto engine = make(o);
  ASSERT_TRUE(engine);
  expect_same(ref, batched(*engine, reqs));
  EXPECT_GT(engine->stats().preemptions, 0u);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0u);
}

TEST_F(BatchEngineTest, PrefixCacheHitReportsCachedTokensAndSameOutput) {
  auto reqs = requests(1, 8);
  for (int i = 0; i < 40; ++i) reqs[0].prompt.push_back(int32_t(100 + i));  // 40+ tokens: 2+ full blocks
  BatchEngineOptions o;
  o.n_ctx = 512;
  auto engine = make(o);
  ASSERT_TRUE(engine);
  const auto first = batched(*engine, reqs).at(0);
  const auto second = batched(*engine, reqs).at(0);
  EXPECT_EQ(first.finish.n_cached, 0);
  const int full_blocks = (int(reqs[0].prompt.size()) - 1) / engine->block_size();
  EXPECT_EQ(second.finish.n_cached, full_blocks * engine->block_size());
  EXPECT_EQ(first.tokens, second.tokens);
}

TEST_F(BatchEngineTest, RequestsTooBigForThePoolFinishWithAnError) {
  BatchEngineOptions o;
  o.n_ctx = 512;
  o.n_blocks = 2;  // 32 tokens
  auto engine = make(o);
  ASSERT_TRUE(engine);
  auto reqs = requests(2, 40);
  reqs[0].prompt.resize(40, 5);  // the prompt alone needs 3 blocks
  reqs[1].prompt.resize(10);     // fits, but 40 more tokens do not
  const auto got = batched(*engine, reqs);
  for (const auto& [i, r] : got) {
    EXPECT_EQ(r.finish.reason, FinishReason::error) << i;
    EXPECT_NE(r.finish.error.find("KV cache is too small"), std::string::npos) << r.finish.error;
  }
  EXPECT_GT(got.at(1).tokens.size(), 0u) << "it ran until the pool was full";
  EXPECT_EQ(engine->stats().kv_blocks_used, 0u);
  // The engine still works.
  auto small = requests(1, 4);
  EXPECT_EQ(batched(*engine, small).at(0).finish.reason, FinishReason::length);
}

TEST_F(BatchEngineTest, CancelFreesBlocksWithinAStep) {
  BatchEngineOptions o;
  o.n_ctx = 512;
  auto engine = make(o);
  ASSERT_TRUE(engine);
  auto reqs = requests(3, 400);
  Collector c;
  std::vector<RequestId> ids;
  for (size_t i = 0; i < reqs.size(); ++i) ids.push_back(*engine->submit(reqs[i], c.callback(int(i))));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (c.n_tokens(0) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GT(engine->stats().kv_blocks_used, 0u);
  for (RequestId id : ids) engine->cancel(id);
  const auto got = c.wait(3);
  for (const auto& [i, r] : got) EXPECT_EQ(r.finish.reason, FinishReason::cancelled);
  while (engine->stats().kv_blocks_used > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(engine->stats().kv_blocks_used, 0u);
  EXPECT_EQ(engine->stats().running, 0);
}

TEST_F(BatchEngineTest, SubmitAfterShutdownIsUnavailable) {
  BatchEngineOptions o;
  o.n_ctx = 512;
  o.max_queue = 2;
  auto engine = make(o);
  ASSERT_TRUE(engine);
  engine->shutdown(true);
  auto r = engine->submit(requests(1, 1)[0], [](const EngineEvent&) {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::unavailable);
}

}  // namespace
}  // namespace ember::runtime
