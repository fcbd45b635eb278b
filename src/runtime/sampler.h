// Token sampling from logits: greedy, or penalties -> top-k -> top-p -> min-p ->
// temperature -> draw, in llama.cpp's order. Deterministic for a given seed. Banned
// tokens are never chosen, on every path (greedy included).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ember::runtime {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // tokens the penalties look back over
  float presence_penalty = 0.0f;   // subtracted once from tokens seen in the window (0: off)
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the window (0: off)
  uint64_t seed = 0xffffffffffffffffull;  // all ones: random seed
  // Token ids that are never sampled (see invalid_tokens). Ids outside the logits are ignored.
  std::vector<int32_t> banned;
};

// Says whether a token may come next (a grammar constraint, runtime/constraint.h).
using TokenFilter = std::function<bool(int32_t)>;

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);  // returns the chosen token id
  // The same chain over the tokens `allowed` accepts (the masked distribution), asking it
  // only about tokens the chain could pick: greedy walks the candidates by logit; with
  // top-k/top-p/min-p the kept set is filled with allowed tokens in logit order; otherwise
  // a drawn token that is refused is removed and the draw repeated. -1 when none is allowed.
  int32_t sample(std::span<const float> logits, const TokenFilter& allowed);
  void accept(int32_t token);                     // remember for the repeat penalty
  void reset();
  uint64_t seed() const { return seed_; }

  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };

 private:
  void apply_repeat_penalty(std::vector<Candidate>& c) const;
  void fill_candidates(std::span<const float> logits);
  void truncate(std::vector<Candidate>& c) const;  // top-k, top-p, min-p on sorted candidates
  int32_t draw(std::vector<Candidate>& c);          // at the temperature
  int32_t sample_allowed_truncated(const TokenFilter& allowed);
  int32_t sample_allowed_rejecting(const TokenFilter& allowed);

  SamplingParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> candidates_;
  std::vector<bool> banned_;  // by id; empty when nothing is banned
};

int32_t argmax(std::span<const float> logits);

// Tokens no model should emit: ids the tokenizer marks UNUSED, and ids past the
// tokenizer's vocabulary when the output layer has extra (padding) rows. Special tokens
// the model is trained to emit (end of turn, think tags, tool-call and channel markers)
// stay sampleable.
std::vector<int32_t> invalid_tokens(const tok::Tokenizer& tokenizer, int n_logits);

}  // namespace ember::runtime
