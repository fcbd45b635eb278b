#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace ember::runtime {

int32_t argmax(std::span<const float> logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  seed_ = params.seed == ~0ull ? std::random_device{}() : params.seed;
  rng_.seed(seed_);
  for (int32_t id : params.banned) {
    if (id < 0) continue;
    if (size_t(id) >= banned_.size()) banned_.resize(size_t(id) + 1, false);
    banned_[size_t(id)] = true;
  }
}

std::vector<int32_t> invalid_tokens(const tok::Tokenizer& tokenizer, int n_logits) {
  std::vector<int32_t> out;
  const int32_t n_vocab = tokenizer.n_vocab();
  for (int32_t id = 0; id < std::min(n_vocab, n_logits); ++id)
    if (tokenizer.token_type(id) == tok::TokenType::unused) out.push_back(id);
  for (int32_t id = n_vocab; id < n_logits; ++id) out.push_back(id);
  return out;
}

void Sampler::reset() {
  recent_.clear();
  rng_.seed(seed_);
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (int(recent_.size()) > params_.repeat_last_n) recent_.pop_front();
}

void Sampler::apply_repeat_penalty(std::vector<Candidate>& c) const {
  const bool additive = params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if ((params_.repeat_penalty == 1.0f && !additive) || recent_.empty()) return;
  std::unordered_map<int32_t, int> seen;
  for (int32_t t : recent_) ++seen[t];
  for (auto& cand : c) {
    const auto it = seen.find(cand.id);
    if (it == seen.end()) continue;
    if (params_.repeat_penalty != 1.0f)
      cand.logit = cand.logit > 0 ? cand.logit / params_.repeat_penalty : cand.logit * params_.repeat_penalty;
    cand.logit -= params_.frequency_penalty * float(it->second) + params_.presence_penalty;
  }
}


int32_t Sampler::sample(std::span<const float> logits) {
  auto& c = candidates_;
  c.clear();
  c.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (i >= banned_.size() || !banned_[i]) c.push_back({int32_t(i), logits[i], 0.0f});
  if (c.empty()) return argmax(logits);  // everything banned: nothing better to do
  apply_repeat_penalty(c);
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (params_.temperature <= 0.0f) return std::min_element(c.begin(), c.end(), by_logit)->id;

  size_t n = c.size();
  if (params_.top_k > 0 && size_t(params_.top_k) < n) n = size_t(params_.top_k);
  std::partial_sort(c.begin(), c.begin() + std::ptrdiff_t(n), c.end(), by_logit);
  c.resize(n);

  // probabilities at temperature 1 for top-p / min-p (as llama.cpp's default chain)
  auto normalise = [&](float temp) {
    double sum = 0.0;
    for (auto& x : c) sum += (x.p = std::exp((x.logit - c[0].logit) / temp));
    for (auto& x : c) x.p = float(x.p / sum);
  };
  normalise(1.0f);
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += c[i].p;
      if (cum >= params_.top_p) { keep = i + 1; break; }
    }
    c.resize(keep);
  }
  if (params_.min_p > 0.0f) {
    const float threshold = c[0].p * params_.min_p;
    size_t keep = 1;
    while (keep < c.size() && c[keep].p >= threshold) ++keep;
    c.resize(keep);
  }
  normalise(params_.temperature);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double r = uniform(rng_), cum = 0.0;
  for (const auto& x : c) {
    cum += x.p;
    if (r < cum) return x.id;
  }
  return c.back().id;
}

}  // namespace ember::runtime
