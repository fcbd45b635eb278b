#include "runtime/token_output.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ember::runtime {

void fill_logprobs(std::span<const float> logits, int32_t chosen, int n_top, EngineEvent& ev) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float x : logits) sum += std::exp(double(x - max));
  const float lse = max + float(std::log(sum));
  ev.logprob = {chosen, logits[size_t(chosen)] - lse};
  if (n_top <= 0) return;
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = std::min(ids.size(), size_t(n_top));
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(k), ids.end(),
                    [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  for (size_t i = 0; i < k; ++i) ev.top.push_back({ids[i], logits[size_t(ids[i])] - lse});
}

void fill_logprobs_allowed(std::span<const float> logits, int32_t chosen, int n_top, const TokenFilter& allowed,
                           EngineEvent& ev) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double rest = 0.0;
  for (float x : logits) rest += std::exp(double(x - max));
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  double sum = 0.0;  // over allowed tokens
  std::vector<int32_t> top;
  for (int32_t id : ids) {
    const double e = std::exp(double(logits[size_t(id)] - max));
    if (sum > 0.0 && rest < 1e-6 * sum && int(top.size()) >= n_top) break;
    rest -= e;
    if (!allowed(id) && id != chosen) continue;
    sum += e;
    if (int(top.size()) < n_top) top.push_back(id);
  }
  const float lse = max + float(std::log(sum));
  ev.logprob = {chosen, logits[size_t(chosen)] - lse};
  for (int32_t id : top) ev.top.push_back({id, logits[size_t(id)] - lse});
}

namespace {

SamplingParams with_banned(SamplingParams sp, const std::vector<int32_t>& banned) {
  sp.banned.insert(sp.banned.end(), banned.begin(), banned.end());
  return sp;
}

}  // namespace

TokenOutput::TokenOutput(const EngineRequest& request, const tok::Tokenizer& tokenizer,
                         const std::vector<int32_t>& banned, TokenBytes* token_bytes)
    : request_(request),
      tokenizer_(tokenizer),
      sampler_(with_banned(request.sampling, banned)),
      text_(tokenizer),
      stops_(request.stop) {
  if (!request.grammar) return;
  if (!token_bytes) token_bytes = (own_bytes_ = std::make_unique<TokenBytes>()).get();
  const size_t n = size_t(tokenizer.n_vocab());
  std::vector<bool> stop(n, false), control(n, false);
  for (size_t id = 0; id < n; ++id) {
    stop[id] = !request.ignore_eos && tokenizer.is_eog(int32_t(id));
    control[id] = tokenizer.is_control(int32_t(id));
  }
  for (int32_t id : request.stop_token_ids)
    if (id >= 0 && size_t(id) < n) stop[size_t(id)] = true;
  constraint_ = std::make_unique<Constraint>(request.grammar, token_bytes->get(tokenizer), std::move(stop),
                                             std::move(control));
}

void TokenOutput::accept_context(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) sampler_.accept(t);
}

TokenOutput::Step TokenOutput::sample(std::span<float> logits, const EventFn& emit) {
  for (const auto& [id, bias] : request_.logit_bias) logits[size_t(id)] += bias;
  Step step;
  const TokenFilter allowed = [this](int32_t t) { return constraint_->allows(t); };
  step.token = constraint_ ? sampler_.sample(logits, allowed) : sampler_.sample(logits);
  if (step.token < 0) {
    step.finished = step.no_token = true;
    return step;
  }
  sampler_.accept(step.token);
  ++n_generated_;
  const auto& ids = request_.stop_token_ids;
  const bool stop_token = (!request_.ignore_eos && tokenizer_.is_eog(step.token)) ||
                          std::find(ids.begin(), ids.end(), step.token) != ids.end();
  if (stop_token) {
    step.finished = true;
    return step;
  }
  EngineEvent ev;
  ev.token = step.token;
  if (request_.logprobs && constraint_) fill_logprobs_allowed(logits, step.token, request_.top_logprobs, allowed, ev);
  else if (request_.logprobs) fill_logprobs(logits, step.token, request_.top_logprobs, ev);
  if (constraint_) constraint_->accept(step.token);
  ev.text = stops_.push(text_.push(step.token));
  emit(ev);
  step.finished = stops_.stopped() || (constraint_ && constraint_->done());
  return step;
}

void TokenOutput::flush(const EventFn& emit) {
  EngineEvent rest;
  rest.text = stops_.push(text_.flush()) + stops_.flush();
  if (!rest.text.empty()) emit(rest);
}

}  // namespace ember::runtime
