// Text generation on one sequence: prefill the prompt in chunks, then decode token
// by token with a Sampler, streaming text and stopping at end-of-generation tokens,
// stop strings, max_tokens or a full context.
#pragma once
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/decoder.h"
#include "model/model.h"
#include "runtime/sampler.h"

namespace ember::runtime {

struct GenerateOptions {
  int max_tokens = 128;         // < 0: until the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  bool ignore_eos = false;
  int prefill_chunk = 256;      // tokens per prefill forward
};

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;
  double prompt_seconds = 0.0;
  double gen_seconds = 0.0;
  std::string finish_reason;  // "stop" (eog token or stop string) or "length"
};

// Returns false to cancel generation.
using TextCallback = std::function<bool(std::string_view text)>;

// Holds back text that may be the start of a stop string; finds stop strings that
// span several tokens.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends text; returns what can be emitted now. Sets stopped() when a stop string appears.
  std::string push(std::string_view text);
  std::string flush();  // the held-back rest once generation ends without a stop
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

class Generator {
 public:
  // Generates with `decoder` (CPU or GPU), which must belong to `model`.
  Generator(const model::Model& model, model::Decoder& decoder);

  Expected<GenerateStats> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                   const TextCallback& on_text);
  model::Decoder& decoder() { return decoder_; }

 private:
  Status prefill(std::span<const int32_t> prompt, int chunk, std::vector<float>& logits);

  const model::Model& model_;
  model::Decoder& decoder_;
};

}  // namespace ember::runtime
