// BatchEngine: continuous batching over a paged KV cache (docs/kv.md, docs/server.md).
// One engine thread loops: take new requests and cancellations, let the Scheduler hand
// out this step's tokens, run them all through a BatchDecoder (CPU: CpuDecoder::forward_batch;
// GPU: model/gpu/gpu_batch_decoder.h), sample each sequence that reached its end, finish
// what is done (its blocks go back by RAII).
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "kv/block_pool.h"
#include "model/batch_decoder.h"
#include "model/model.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace ember::runtime {

struct BatchEngineOptions {
  int n_ctx = 4096;          // longest sequence (prompt + completion)
  int max_seqs = 16;         // sequences running at once
  int max_queue = 64;        // waiting requests beyond the running ones; more -> overloaded
  int token_budget = 64;     // tokens per step (small on the CPU: a step of n tokens costs ~n single decodes)
  int block_size = 16;       // tokens per KV block
  int n_blocks = 0;          // KV blocks in the pool; 0: from kv_cache_bytes
  size_t kv_cache_bytes = 0; // 0: the decoder's default_kv_bytes, else max_seqs * 512 tokens (at most
                             // 2 GiB); at least n_ctx tokens
};

class BatchEngine final : public Engine {
 public:
  // `model` must outlive the engine. The engine makes its own CPU decoder on `pool`.
  static Expected<std::unique_ptr<BatchEngine>> create(const model::Model& model, ThreadPool& pool,
                                                       BatchEngineOptions options);
  // With a given decoder (e.g. the GPU one); the engine sizes and allocates its KV cache.
  // `threads` samples the sequences of a step in parallel.
  static Expected<std::unique_ptr<BatchEngine>> create(const model::Model& model,
                                                       std::unique_ptr<model::BatchDecoder> decoder,
                                                       BatchEngineOptions options,
                                                       ThreadPool& threads = ThreadPool::global());
  ~BatchEngine() override;

  Expected<RequestId> submit(EngineRequest request, EventFn on_event) override;
  void cancel(RequestId id) override;
  EngineStats stats() const override;
  void shutdown(bool drain) override;
  int n_ctx() const override { return options_.n_ctx; }
  int n_blocks() const { return pool_.n_blocks(); }
  int block_size() const { return pool_.block_size(); }
  const char* device_name() const { return decoder_->device_name(); }

 private:
  BatchEngine(const model::Model& model, std::unique_ptr<model::BatchDecoder> decoder, BatchEngineOptions options,
              int n_blocks, ThreadPool& threads);
  void worker();
  bool take_inputs(bool has_work);  // false: stop the thread
  void step();
  void run_chunks(const StepPlan& plan);
  bool handle_logits(Sequence& seq, std::span<float> logits);  // true: the sequence is done
  void end(Sequence& seq, FinishReason reason, std::string error = {});
  void end_removed(std::unique_ptr<Sequence> seq, FinishReason reason, std::string error = {});
  void deliver(std::vector<std::unique_ptr<Sequence>> seqs);
  void publish_stats();

  const model::Model& model_;
  BatchEngineOptions options_;
  std::vector<int32_t> banned_;
  TokenBytes token_bytes_;  // every token's bytes, for requests with a grammar
  std::unique_ptr<model::BatchDecoder> decoder_;  // owns the KV cache's numbers
  ThreadPool& threads_;  // samples the sequences of a step in parallel
  kv::BlockPool pool_;
  Scheduler scheduler_;           // engine thread only
  model::ForwardBatch batch_;     // engine thread only, reused every step
  std::vector<float> logits_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> incoming_;
  std::vector<RequestId> cancels_;
  int n_waiting_ = 0;  // the scheduler's waiting queue, as of the last step
  RequestId next_id_ = 1;
  bool accepting_ = true, stopping_ = false, drain_ = true;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace ember::runtime
