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


namespace {

bool by_logit(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Sorts c[done..) a block further (descending logit); returns the new sorted length.
size_t sort_more(std::vector<Sampler::Candidate>& c, size_t done) {
  const size_t n = std::min(c.size(), done == 0 ? size_t(64) : done * 8);
  std::partial_sort(c.begin() + std::ptrdiff_t(done), c.begin() + std::ptrdiff_t(n), c.end(), by_logit);
  return n;
}

// Probabilities of c at `temp`, normalised over c.
void normalise(std::vector<Sampler::Candidate>& c, float temp) {
  float max = c[0].logit;
  for (const auto& x : c) max = std::max(max, x.logit);
  double sum = 0.0;
  for (auto& x : c) sum += (x.p = std::exp((x.logit - max) / temp));
  for (auto& x : c) x.p = float(x.p / sum);
}

}  // namespace

void Sampler::fill_candidates(std::span<const float> logits) {
  auto& c = candidates_;
  c.clear();
  c.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (i >= banned_.size() || !banned_[i]) c.push_back({int32_t(i), logits[i], 0.0f});
  apply_repeat_penalty(c);
}

// c sorted by logit, descending; applies top-k, then top-p and min-p at temperature 1
// (llama.cpp's default chain).
void Sampler::truncate(std::vector<Candidate>& c) const {
  if (params_.top_k > 0 && size_t(params_.top_k) < c.size()) c.resize(size_t(params_.top_k));
  normalise(c, 1.0f);
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
}

int32_t Sampler::draw(std::vector<Candidate>& c) {
  normalise(c, params_.temperature);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double r = uniform(rng_), cum = 0.0;
  for (const auto& x : c) {
    cum += x.p;
    if (r < cum) return x.id;
  }
  return c.back().id;
}

int32_t Sampler::sample(std::span<const float> logits) {
  fill_candidates(logits);
  auto& c = candidates_;
  if (c.empty()) return argmax(logits);  // everything banned: nothing better to do
  if (params_.temperature <= 0.0f) return std::min_element(c.begin(), c.end(), by_logit)->id;
  size_t n = c.size();
  if (params_.top_k > 0 && size_t(params_.top_k) < n) n = size_t(params_.top_k);
  std::partial_sort(c.begin(), c.begin() + std::ptrdiff_t(n), c.end(), by_logit);
  c.resize(n);
  truncate(c);
  return draw(c);
}

int32_t Sampler::sample(std::span<const float> logits, const TokenFilter& allowed) {
  fill_candidates(logits);
  auto& c = candidates_;
  const bool truncates = params_.top_k > 0 || params_.top_p < 1.0f || params_.min_p > 0.0f;
  if (params_.temperature > 0.0f && truncates) return sample_allowed_truncated(allowed);
  if (params_.temperature > 0.0f) return sample_allowed_rejecting(allowed);
  for (size_t i = 0, sorted = 0; i < c.size(); ++i) {  // greedy: the best allowed token
    if (i == sorted) sorted = sort_more(c, sorted);
    if (allowed(c[i].id)) return c[i].id;
  }
  return -1;
}

// Fills the kept set with allowed tokens in logit order until top-k, top-p or min-p would
// stop there, so truncation sees the masked distribution. top-p normalises over the
// candidates not yet refused (tokens past the cut are not asked; docs/grammar.md).
int32_t Sampler::sample_allowed_truncated(const TokenFilter& allowed) {
  auto& c = candidates_;
  const size_t k = params_.top_k > 0 ? size_t(params_.top_k) : c.size();
  double total = 0.0;
  float max = c.empty() ? 0.0f : c[0].logit;
  for (const auto& x : c) max = std::max(max, x.logit);
  if (params_.top_k <= 0)
    for (const auto& x : c) total += std::exp(double(x.logit - max));
  std::vector<Candidate> kept;
  double cum = 0.0;
  for (size_t i = 0, sorted = 0; i < c.size() && kept.size() < k; ++i) {
    if (i == sorted) sorted = sort_more(c, sorted);
    const double e = std::exp(double(c[i].logit - max));
    if (!allowed(c[i].id)) {
      total -= e;
      continue;
    }
    if (params_.top_k <= 0 && params_.min_p > 0.0f && !kept.empty() &&
        c[i].logit - kept[0].logit < std::log(params_.min_p))
      break;  // min-p would cut here and everything after
    kept.push_back(c[i]);
    cum += e;
    if (params_.top_k <= 0 && params_.top_p < 1.0f && cum >= params_.top_p * total) break;
  }
  if (kept.empty()) return -1;
  if (params_.top_k > 0) truncate(kept);  // top-p and min-p over the top k allowed
  return draw(kept);
}

// No truncation: draw from the whole distribution; a refused token is removed and the
// rest renormalised, which is exactly the masked distribution.
int32_t Sampler::sample_allowed_rejecting(const TokenFilter& allowed) {
  auto& c = candidates_;
  if (c.empty()) return -1;
  normalise(c, params_.temperature);
  double total = 1.0;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int tries = 0; tries < 16 && total > 0.0; ++tries) {
    const double r = uniform(rng_) * total;
    double cum = 0.0;
    size_t pick = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += c[i].p;
      if (c[i].p > 0.0f && r < cum) { pick = i; break; }
    }
    if (pick == c.size()) {  // rounding left r past the end: the last token still in play
      for (size_t i = c.size(); i-- > 0;)
        if (c[i].p > 0.0f) { pick = i; break; }
      if (pick == c.size()) break;
    }
    if (allowed(c[pick].id)) return c[pick].id;
    total -= c[pick].p;
    c[pick].p = 0.0f;
  }
  // Many refusals (the allowed tokens are unlikely): draw from the allowed ones directly.
  std::vector<Candidate> ok;
  for (const auto& x : c)
    if (x.p > 0.0f && allowed(x.id)) ok.push_back(x);
  if (ok.empty()) {  // all allowed tokens underflowed to p = 0: the best of them
    std::sort(c.begin(), c.end(), by_logit);
    for (const auto& x : c)
      if (allowed(x.id)) return x.id;
    return -1;
  }
  double sum = 0.0;
  for (const auto& x : ok) sum += x.p;
  const double r = uniform(rng_) * sum;
  double cum = 0.0;
  for (const auto& x : ok)
    if (r < (cum += x.p)) return x.id;
  return ok.back().id;
}

}  // namespace ember::runtime
