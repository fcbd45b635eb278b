#include "server/request_group.h"

namespace ember::server {

runtime::EngineRequest engine_request(const std::vector<int32_t>& prompt, const GenerationParams& gen,
                                      std::vector<std::string> stops, int choice) {
  runtime::EngineRequest r;
  r.prompt = prompt;
  r.max_tokens = gen.max_tokens;
  r.sampling = gen.sampling;
  if (gen.has_seed) r.sampling.seed = gen.sampling.seed + uint64_t(choice);
  if (r.sampling.seed == ~0ull && gen.has_seed) r.sampling.seed = 0;
  r.stop = std::move(stops);
  r.logit_bias = gen.logit_bias;
  r.logprobs = gen.logprobs;
  r.top_logprobs = gen.top_logprobs;
  r.ignore_eos = gen.ignore_eos;
  r.grammar = gen.grammar;
  return r;
}

Status RequestGroup::submit(const std::vector<int32_t>& prompt, const GenerationParams& gen,
                            std::vector<std::string> stops) {
  for (int i = 0; i < gen.n; ++i) {
    auto channel = channel_;
    auto on_event = [channel, i](const runtime::EngineEvent& ev) {
      {
        std::lock_guard lock(channel->mu);
        channel->events.push_back({i, ev});
      }
      channel->cv.notify_all();
    };
    auto id = engine_.submit(engine_request(prompt, gen, stops, i), std::move(on_event));
    if (!id) {
      cancel_all();
      return id.status();
    }
    ids_.push_back(*id);
  }
  return {};
}

std::vector<ChoiceEvent> RequestGroup::take(std::chrono::milliseconds timeout) {
  std::vector<ChoiceEvent> out;
  std::unique_lock lock(channel_->mu);
  channel_->cv.wait_for(lock, timeout, [&] { return !channel_->events.empty(); });
  while (!channel_->events.empty()) {
    out.push_back(std::move(channel_->events.front()));
    channel_->events.pop_front();
    if (out.back().event.kind == runtime::EngineEvent::Kind::finish) ++n_finished_taken_;
  }
  return out;
}

bool RequestGroup::finished() const { return n_finished_taken_ >= int(ids_.size()); }

void RequestGroup::cancel_all() {
  if (finished()) return;
  for (auto id : ids_) engine_.cancel(id);
}

}  // namespace ember::server
