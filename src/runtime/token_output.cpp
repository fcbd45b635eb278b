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

namespace {

SamplingParams with_banned(SamplingParams sp, const std::vector<int32_t>& banned) {
  sp.banned.insert(sp.banned.end(), banned.begin(), banned.end());
  return sp;
}

}  // namespace

TokenOutput::TokenOutput(const EngineRequest& request, const tok::Tokenizer& tokenizer,
                         const std::vector<int32_t>& banned)
    : request_(request),
      tokenizer_(tokenizer),
      sampler_(with_banned(request.sampling, banned)),
      text_(tokenizer),
      stops_(request.stop) {}

void TokenOutput::accept_context(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) sampler_.accept(t);
}

TokenOutput::Step TokenOutput::sample(std::span<float> logits, const EventFn& emit) {
  for (const auto& [id, bias] : request_.logit_bias) logits[size_t(id)] += bias;
  Step step;
  step.token = sampler_.sample(logits);
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
  if (request_.logprobs) fill_logprobs(logits, step.token, request_.top_logprobs, ev);
  ev.text = stops_.push(text_.push(step.token));
  emit(ev);
  step.finished = stops_.stopped();
  return step;
}

void TokenOutput::flush(const EventFn& emit) {
  EngineEvent rest;
  rest.text = stops_.push(text_.flush()) + stops_.flush();
  if (!rest.text.empty()) emit(rest);
}

}  // namespace ember::runtime
