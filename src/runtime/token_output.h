// One request's output side, shared by every engine: sampling with the request's
// settings (logit_bias, penalties over the context, seed), stop tokens, stop strings,
// incremental UTF-8 text and log-probabilities. SerialEngine and BatchEngine both use
// it, so a request samples the same tokens whichever engine (and batch) runs it.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/generator.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace ember::runtime {

// Log-probability of `chosen` and the `n_top` most likely tokens under softmax(logits).
void fill_logprobs(std::span<const float> logits, int32_t chosen, int n_top, EngineEvent& ev);
// The same under the distribution renormalised over the tokens `allowed` accepts (a
// grammar): tokens are asked in logit order until the rest can change the sum by < 1e-6.
void fill_logprobs_allowed(std::span<const float> logits, int32_t chosen, int n_top, const TokenFilter& allowed,
                           EngineEvent& ev);

class TokenOutput {
 public:
  // `request` and `tokenizer` must outlive this; `banned` is added to the sampler's list.
  // `token_bytes` (the engine's cache, may be null) serves a request with a grammar.
  TokenOutput(const EngineRequest& request, const tok::Tokenizer& tokenizer, const std::vector<int32_t>& banned,
              TokenBytes* token_bytes = nullptr);

  // Tokens already in the context (the prompt) join the penalty window.
  void accept_context(std::span<const int32_t> tokens);
  int n_generated() const { return n_generated_; }
  bool at_max_tokens() const { return request_.max_tokens >= 0 && n_generated_ >= request_.max_tokens; }

  struct Step {
    int32_t token = -1;
    bool finished = false;  // a stop token or stop string ended generation (reason stop)
    bool no_token = false;  // the grammar allowed no token at all (reason error)
  };
  // Adds logit_bias to `logits` (in place), samples and counts a token and, unless it
  // is a stop token, emits its event.
  Step sample(std::span<float> logits, const EventFn& emit);
  // Emits the text still held back (partial UTF-8, a possible stop string), if any.
  void flush(const EventFn& emit);

 private:
  const EngineRequest& request_;
  const tok::Tokenizer& tokenizer_;
  Sampler sampler_;
  tok::StreamDecoder text_;
  StopMatcher stops_;
  int n_generated_ = 0;
  std::unique_ptr<TokenBytes> own_bytes_;  // when no cache was given
  std::unique_ptr<Constraint> constraint_;  // when the request has a grammar
};

}  // namespace ember::runtime
