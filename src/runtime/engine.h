// The engine interface the server talks to (docs/server.md). A request is a prompt's
// token ids plus generation settings; the engine streams events for it on its own
// thread. Implementations: SerialEngine (one request at a time, any Decoder) and
// BatchEngine (continuous batching over a paged KV cache, CPU; docs/kv.md).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "grammar/grammar.h"
#include "runtime/sampler.h"

namespace ember::runtime {

using RequestId = uint64_t;

struct EngineRequest {
  std::vector<int32_t> prompt;      // token ids, not empty
  int max_tokens = -1;              // < 0: until the context is full
  SamplingParams sampling;          // seed included
  std::vector<std::string> stop;    // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits before sampling
  bool logprobs = false;            // report each token's log-probability
  int top_logprobs = 0;             // and this many most likely alternatives
  bool ignore_eos = false;
  // When set, the output must match this grammar (docs/grammar.md): tokens it refuses are
  // never sampled, stop/EOS tokens only once it is complete, and generation ends (reason
  // stop) when the output is complete and nothing may follow.
  std::shared_ptr<const grammar::Grammar> grammar;
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

enum class FinishReason { stop, length, cancelled, error };
const char* to_string(FinishReason r);

struct EngineEvent {
  enum class Kind { token, finish };
  Kind kind = Kind::token;
  // token: the text this token releases (may be empty while a stop string or partial
  // UTF-8 is held back), and its log-probability data when asked for.
  std::string text;
  int32_t token = -1;
  TokenLogprob logprob;
  std::vector<TokenLogprob> top;
  // finish
  FinishReason reason = FinishReason::stop;
  std::string error;  // the message when reason == error
  int n_prompt = 0, n_completion = 0, n_cached = 0;
};

// Called on the engine thread; must be quick and must not call back into the engine
// except cancel().
using EventFn = std::function<void(const EngineEvent&)>;

// Fixed-bucket histogram (seconds), as Prometheus exposes it.
struct Histogram {
  static constexpr std::array<double, 14> kBounds = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
                                                     0.1,   0.25,  0.5,  1.0,  2.5,  5.0,  10.0};
  std::array<uint64_t, kBounds.size() + 1> counts{};  // the last bucket is +Inf (not cumulative)
  double sum = 0.0;
  uint64_t count = 0;
  void observe(double seconds);
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  uint64_t prompt_tokens = 0;      // total prompt tokens processed (cached ones included)
  uint64_t generation_tokens = 0;  // total tokens generated
  uint64_t requests_finished = 0;
  Histogram ttft;                  // time to first token
  Histogram inter_token;           // time between tokens
  double kv_usage = 0.0;           // fraction of KV capacity in use, 0..1
  uint64_t kv_blocks_used = 0;     // paged engines: KV blocks held by requests
  uint64_t kv_blocks_total = 0;    // paged engines: KV blocks in the pool (0: not paged)
  uint64_t preemptions = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Queues a request. Errors: invalid_argument (empty or too long prompt, bad token ids),
  // overloaded (the queue is full), unavailable (shutting down). On success exactly one
  // finish event follows, after any token events.
  virtual Expected<RequestId> submit(EngineRequest request, EventFn on_event) = 0;
  // Stops a request soon (within one token); its finish reason is "cancelled". Unknown
  // or finished ids are ignored.
  virtual void cancel(RequestId id) = 0;
  virtual EngineStats stats() const = 0;
  // Refuses new requests; with drain, finishes queued and running ones, else cancels
  // them. Returns once the engine thread has stopped.
  virtual void shutdown(bool drain) = 0;
  virtual int n_ctx() const = 0;
};

}  // namespace ember::runtime
