// SerialEngine: the simplest Engine. One worker thread owns one Decoder and runs
// requests one at a time from a bounded FIFO queue (docs/server.md). When a prompt
// extends the tokens the decoder already holds, only the new tokens are prefilled.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "model/decoder.h"
#include "model/model.h"
#include "runtime/constraint.h"
#include "runtime/engine.h"

namespace ember::runtime {

struct SerialEngineOptions {
  int max_queue = 64;       // waiting requests beyond the running one; more -> overloaded
  int prefill_chunk = 256;  // prompt tokens per forward
  bool reuse_prefix = true;
};

class SerialEngine final : public Engine {
 public:
  // `model` and `decoder` must outlive the engine.
  SerialEngine(const model::Model& model, model::Decoder& decoder, SerialEngineOptions options);
  ~SerialEngine() override;

  Expected<RequestId> submit(EngineRequest request, EventFn on_event) override;
  void cancel(RequestId id) override;
  EngineStats stats() const override;
  void shutdown(bool drain) override;
  int n_ctx() const override { return decoder_.n_ctx(); }

 private:
  struct Item {
    RequestId id = 0;
    EngineRequest request;
    EventFn on_event;
    std::shared_ptr<std::atomic<bool>> cancelled;
    double submitted_at = 0.0;
  };
  struct Run;  // the state of the running request (serial_engine.cpp)

  void worker();
  void run(Item& item);
  Status prefill(const std::vector<int32_t>& prompt, Run& r, std::vector<float>& logits);
  Status decode_loop(Item& item, Run& r, std::vector<float>& logits);
  void finish(Item& item, FinishReason reason, const Run& r, std::string error = {});
  void deliver_cancelled_waiting();

  const model::Model& model_;
  model::Decoder& decoder_;
  SerialEngineOptions options_;
  std::vector<int32_t> banned_;
  TokenBytes token_bytes_;  // every token's bytes, for requests with a grammar
  std::vector<int32_t> cached_;  // the tokens whose keys/values the decoder holds (worker only)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::vector<Item> cancelled_waiting_;  // cancelled while queued; finished by the worker
  std::shared_ptr<std::atomic<bool>> running_cancel_;
  RequestId running_id_ = 0;
  RequestId next_id_ = 1;
  bool accepting_ = true;
  bool stopping_ = false;
  bool drain_ = true;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace ember::runtime
