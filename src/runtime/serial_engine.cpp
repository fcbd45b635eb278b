#include "runtime/serial_engine.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "runtime/token_output.h"

namespace ember::runtime {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
  }
  return "error";
}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++counts[i];
  sum += seconds;
  ++count;
}

struct SerialEngine::Run {
  int n_prompt = 0, n_cached = 0, n_generated = 0;
  double last_token_at = 0.0;
};

SerialEngine::SerialEngine(const model::Model& model, model::Decoder& decoder, SerialEngineOptions options)
    : model_(model), decoder_(decoder), options_(options) {
  banned_ = invalid_tokens(model.tokenizer, model.spec.n_vocab);
  thread_ = std::thread([this] { worker(); });
}

SerialEngine::~SerialEngine() { shutdown(false); }

Expected<RequestId> SerialEngine::submit(EngineRequest request, EventFn on_event) {
  const int n_vocab = model_.spec.n_vocab;
  if (request.prompt.empty()) return make_error(ErrorKind::invalid_argument, "the prompt is empty");
  if (int64_t(request.prompt.size()) >= decoder_.n_ctx())
    return make_error(ErrorKind::invalid_argument,
                      "the prompt has {} tokens; this model's context is {} tokens (prompt plus completion)",
                      request.prompt.size(), decoder_.n_ctx());
  for (int32_t t : request.prompt)
    if (t < 0 || t >= n_vocab) return make_error(ErrorKind::invalid_argument, "prompt token id {} is out of range", t);
  for (const auto& [t, b] : request.logit_bias)
    if (t < 0 || t >= n_vocab) return make_error(ErrorKind::invalid_argument, "logit_bias: token id {} is out of range", t);
  std::lock_guard lock(mu_);
  if (!accepting_) return make_error(ErrorKind::unavailable, "the server is shutting down");
  if (int(queue_.size()) >= options_.max_queue)
    return make_error(ErrorKind::overloaded, "the request queue is full ({} waiting); retry later", queue_.size());
  Item item;
  item.id = next_id_++;
  item.request = std::move(request);
  item.on_event = std::move(on_event);
  item.cancelled = std::make_shared<std::atomic<bool>>(false);
  item.submitted_at = now_seconds();
  queue_.push_back(std::move(item));
  stats_.waiting = int(queue_.size());
  cv_.notify_all();
  return queue_.back().id;
}

void SerialEngine::cancel(RequestId id) {
  std::lock_guard lock(mu_);
  if (id == running_id_ && running_cancel_) {
    running_cancel_->store(true);
    return;
  }
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Item& i) { return i.id == id; });
  if (it == queue_.end()) return;
  cancelled_waiting_.push_back(std::move(*it));
  queue_.erase(it);
  stats_.waiting = int(queue_.size());
  cv_.notify_all();
}

EngineStats SerialEngine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void SerialEngine::shutdown(bool drain) {
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    stopping_ = true;
    drain_ = drain;
    if (!drain) {
      for (auto& item : queue_) cancelled_waiting_.push_back(std::move(item));
      queue_.clear();
      stats_.waiting = 0;
      if (running_cancel_) running_cancel_->store(true);
    }
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void SerialEngine::deliver_cancelled_waiting() {
  std::vector<Item> items;
  {
    std::lock_guard lock(mu_);
    items.swap(cancelled_waiting_);
  }
  for (auto& item : items) {
    Run r;
    r.n_prompt = int(item.request.prompt.size());
    finish(item, FinishReason::cancelled, r);
  }
}

void SerialEngine::worker() {
  for (;;) {
    Item item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !cancelled_waiting_.empty(); });
      if (queue_.empty() || !cancelled_waiting_.empty()) {
        const bool done = queue_.empty() && cancelled_waiting_.empty() && stopping_;
        lock.unlock();
        if (done) return;
        deliver_cancelled_waiting();
        continue;
      }
      item = std::move(queue_.front());
      queue_.pop_front();
      running_id_ = item.id;
      running_cancel_ = item.cancelled;
      stats_.waiting = int(queue_.size());
      stats_.running = 1;
    }
    try {
      run(item);
    } catch (const std::exception& e) {  // nothing may escape the engine thread
      cached_.clear();
      finish(item, FinishReason::error, Run{}, e.what());
    }
    std::lock_guard lock(mu_);
    running_id_ = 0;
    running_cancel_.reset();
    stats_.running = 0;
  }
}

void SerialEngine::run(Item& item) {
  Run r;
  r.n_prompt = int(item.request.prompt.size());
  std::vector<float> logits;
  Status st = prefill(item.request.prompt, r, logits);
  if (st) st = decode_loop(item, r, logits);
  if (!st) {
    cached_.clear();  // the decoder's cache may hold a partial prefill
    finish(item, FinishReason::error, r, st.message());
  }
}

Status SerialEngine::prefill(const std::vector<int32_t>& prompt, Run& r, std::vector<float>& logits) {
  size_t keep = 0;
  if (options_.reuse_prefix) {
    const size_t common =
        size_t(std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end()).first - cached_.begin());
    keep = std::min(common, prompt.size() - 1);  // at least one token runs to produce logits
  }
  cached_.resize(keep);
  r.n_cached = int(keep);
  const size_t chunk = size_t(std::max(1, options_.prefill_chunk));
  for (size_t pos = keep; pos < prompt.size(); pos += chunk) {
    const std::span<const int32_t> part(prompt.data() + pos, std::min(chunk, prompt.size() - pos));
    EMBER_RETURN_IF_ERROR(decoder_.forward(part, int(pos), false, logits));
    cached_.insert(cached_.end(), part.begin(), part.end());
  }
  std::lock_guard lock(mu_);
  stats_.prompt_tokens += prompt.size();
  return {};
}

Status SerialEngine::decode_loop(Item& item, Run& r, std::vector<float>& logits) {
  TokenOutput out(item.request, model_.tokenizer, banned_, &token_bytes_);
  out.accept_context(cached_);
  const size_t n_vocab = size_t(model_.spec.n_vocab);
  FinishReason reason = FinishReason::length;
  for (;;) {
    deliver_cancelled_waiting();
    if (item.cancelled->load()) {
      finish(item, FinishReason::cancelled, r);
      return {};
    }
    if (out.at_max_tokens()) break;
    const TokenOutput::Step step = out.sample(std::span<float>(logits.data(), n_vocab), item.on_event);
    r.n_generated = out.n_generated();
    const double t = now_seconds();
    {
      std::lock_guard lock(mu_);
      if (r.n_generated == 1) stats_.ttft.observe(t - item.submitted_at);
      else stats_.inter_token.observe(t - r.last_token_at);
      ++stats_.generation_tokens;
      stats_.kv_usage = double(cached_.size() + 1) / double(decoder_.n_ctx());
    }
    r.last_token_at = t;
    if (step.no_token) {
      finish(item, FinishReason::error, r, "the response format's grammar allows no token here");
      return {};
    }
    if (step.finished) {
      reason = FinishReason::stop;
      break;
    }
    const int pos = int(cached_.size());
    if (pos + 1 >= decoder_.n_ctx()) break;
    const int32_t one[1] = {step.token};
    EMBER_RETURN_IF_ERROR(decoder_.forward(one, pos, false, logits));
    cached_.push_back(step.token);
  }
  out.flush(item.on_event);
  finish(item, reason, r);
  return {};
}

void SerialEngine::finish(Item& item, FinishReason reason, const Run& r, std::string error) {
  EngineEvent ev;
  ev.kind = EngineEvent::Kind::finish;
  ev.reason = reason;
  ev.error = std::move(error);
  ev.n_prompt = r.n_prompt;
  ev.n_completion = r.n_generated;
  ev.n_cached = r.n_cached;
  {
    std::lock_guard lock(mu_);
    ++stats_.requests_finished;
  }
  try {
    item.on_event(ev);
  } catch (const std::exception& e) {
    log(LogLevel::warn, "engine: an event callback threw: {}", e.what());
  }
}

}  // namespace ember::runtime
