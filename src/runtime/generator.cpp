#include "runtime/generator.h"

#include <algorithm>
#include <chrono>

namespace ember::runtime {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  pending_.append(text);
  size_t cut = std::string::npos;
  for (const auto& s : stops_)
    if (!s.empty()) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Keep the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t len = s.empty() ? 0 : std::min(s.size() - 1, pending_.size()); len > keep; --len)
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = stopped_ ? std::string() : pending_;
  pending_.clear();
  return out;
}

Generator::Generator(const model::Model& model, model::Decoder& decoder) : model_(model), decoder_(decoder) {}

Status Generator::prefill(std::span<const int32_t> prompt, int chunk, std::vector<float>& logits) {
  chunk = std::max(1, chunk);
  for (size_t pos = 0; pos < prompt.size(); pos += size_t(chunk)) {
    const size_t n = std::min(prompt.size() - pos, size_t(chunk));
    EMBER_RETURN_IF_ERROR(decoder_.forward(prompt.subspan(pos, n), int(pos), false, logits));
  }
  return {};
}

Expected<GenerateStats> Generator::generate(std::span<const int32_t> prompt, const GenerateOptions& opt,
                                            const TextCallback& on_text) {
  GenerateStats stats;
  stats.n_prompt = int(prompt.size());
  if (prompt.empty()) return make_error(ErrorKind::invalid_argument, "the prompt is empty");
  if (int(prompt.size()) >= decoder_.n_ctx())
    return make_error(ErrorKind::invalid_argument, "the prompt has {} tokens, more than the context size {} allows",
                      prompt.size(), decoder_.n_ctx());
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  EMBER_RETURN_IF_ERROR(prefill(prompt, opt.prefill_chunk, logits));
  stats.prompt_seconds = seconds_since(t0);

  const auto& tok = model_.tokenizer;
  Sampler sampler(opt.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  tok::StreamDecoder text(tok);
  StopMatcher stops(opt.stop);
  const int n_vocab = model_.spec.n_vocab;
  int pos = int(prompt.size());
  stats.finish_reason = "length";
  t0 = std::chrono::steady_clock::now();
  for (;;) {
    if (opt.max_tokens >= 0 && stats.n_generated >= opt.max_tokens) break;
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), size_t(n_vocab)));
    sampler.accept(next);
    ++stats.n_generated;
    if (!opt.ignore_eos && tok.is_eog(next)) {
      stats.finish_reason = "stop";
      break;
    }
    const std::string out = stops.push(text.push(next));
    if (!out.empty() && !on_text(out)) break;
    if (stops.stopped()) {
      stats.finish_reason = "stop";
      break;
    }
    if (pos + 1 >= decoder_.n_ctx()) break;
    const int32_t one[1] = {next};
    EMBER_RETURN_IF_ERROR(decoder_.forward(one, pos++, false, logits));
  }
  const std::string rest = stops.push(text.flush()) + stops.flush();
  if (!rest.empty()) on_text(rest);
  stats.gen_seconds = seconds_since(t0);
  return stats;
}

}  // namespace ember::runtime
