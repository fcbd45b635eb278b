// Token sampling from logits: greedy, or penalties -> top-k -> top-p -> min-p ->
// temperature -> draw, in llama.cpp's order. Deterministic for a given seed.
#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace ember::runtime {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // tokens the penalty looks back over
  uint64_t seed = 0xffffffffffffffffull;  // all ones: random seed
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(std::span<const float> logits);  // returns the chosen token id
  void accept(int32_t token);                     // remember for the repeat penalty
  void reset();
  uint64_t seed() const { return seed_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_repeat_penalty(std::vector<Candidate>& c) const;

  SamplingParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> candidates_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace ember::runtime
