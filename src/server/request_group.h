// The n engine requests behind one HTTP request, and the channel their events arrive
// on. Engine events come on the engine thread; the HTTP thread takes them from here.
// Destroying the group cancels whatever is still running (a client that went away).
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "runtime/engine.h"
#include "server/schema.h"

namespace ember::server {

struct ChoiceEvent {
  int choice = 0;
  runtime::EngineEvent event;
};

class RequestGroup {
 public:
  explicit RequestGroup(runtime::Engine& engine) : engine_(engine), channel_(std::make_shared<Channel>()) {}
  ~RequestGroup() { cancel_all(); }
  RequestGroup(const RequestGroup&) = delete;
  RequestGroup& operator=(const RequestGroup&) = delete;

  // Submits one engine request per choice (choice i gets seed + i when a seed is given).
  // On an error, cancels those already submitted.
  Status submit(const std::vector<int32_t>& prompt, const GenerationParams& gen, std::vector<std::string> stops);
  // Events that arrived, waiting up to `timeout` for the first one.
  std::vector<ChoiceEvent> take(std::chrono::milliseconds timeout);
  bool finished() const;  // every choice has delivered its finish event and it was taken
  void cancel_all();
  int size() const { return int(ids_.size()); }

 private:
  struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<ChoiceEvent> events;
  };
  runtime::Engine& engine_;
  std::shared_ptr<Channel> channel_;
  std::vector<runtime::RequestId> ids_;
  int n_finished_taken_ = 0;
};

// The engine request for one choice.
runtime::EngineRequest engine_request(const std::vector<int32_t>& prompt, const GenerationParams& gen,
                                      std::vector<std::string> stops, int choice);

}  // namespace ember::server
