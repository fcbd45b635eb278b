#include "runtime/batch_engine.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "runtime/cpu_batch_decoder.h"

namespace ember::runtime {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Blocks for the pool: options.n_blocks, else what kv_cache_bytes (or the decoder's
// default) holds, else enough for max_seqs sequences of 512 tokens (at most 2 GiB), and at
// least one full context.
Expected<int> pool_blocks(const BatchEngineOptions& o, size_t bytes_per_token, size_t default_bytes) {
  const size_t block_bytes = bytes_per_token * size_t(o.block_size);
  if (o.n_blocks > 0) return o.n_blocks;
  if (o.kv_cache_bytes == 0 && default_bytes > 0) {
    const size_t n = std::max(default_bytes / block_bytes, (size_t(o.n_ctx) + o.block_size - 1) / o.block_size);
    return int(std::min<size_t>(n, 1u << 30));
  }
  if (o.kv_cache_bytes > 0) {
    const size_t n = o.kv_cache_bytes / block_bytes;
    if (n == 0)
      return make_error(ErrorKind::invalid_argument,
                        "--kv-cache-gb: {} bytes hold no KV block (one block of {} tokens takes {} bytes)",
                        o.kv_cache_bytes, o.block_size, block_bytes);
    return int(std::min<size_t>(n, 1u << 30));
  }
  const size_t want = size_t(o.max_seqs) * 512;
  const size_t cap = (size_t(2) << 30) / bytes_per_token;
  const size_t tokens = std::max(std::min(want, cap), size_t(o.n_ctx));
  return int((tokens + size_t(o.block_size) - 1) / size_t(o.block_size));
}

}  // namespace

Expected<std::unique_ptr<BatchEngine>> BatchEngine::create(const model::Model& model, ThreadPool& pool,
                                                           BatchEngineOptions options) {
  return create(model, std::make_unique<CpuBatchDecoder>(model.spec, model.weights, pool), options, pool);
}

Expected<std::unique_ptr<BatchEngine>> BatchEngine::create(const model::Model& model,
                                                           std::unique_ptr<model::BatchDecoder> decoder,
                                                           BatchEngineOptions options, ThreadPool& threads) {
  if (decoder == nullptr) return make_error(ErrorKind::invalid_argument, "batch engine: no decoder");
  if (options.n_ctx < 2 || options.max_seqs < 1 || options.block_size < 1 || options.token_budget < 1)
    return make_error(ErrorKind::invalid_argument,
                      "batch engine: bad options (n_ctx {}, max_seqs {}, block_size {}, token_budget {})",
                      options.n_ctx, options.max_seqs, options.block_size, options.token_budget);
  if (decoder->max_seqs() > 0 && options.max_seqs > decoder->max_seqs())
    return make_error(ErrorKind::invalid_argument, "batch engine: {} sequences per step, the decoder takes {}",
                      options.max_seqs, decoder->max_seqs());
  options.token_budget = std::max(options.token_budget, options.max_seqs);  // every decode runs each step
  if (decoder->max_tokens() > 0 && options.token_budget > decoder->max_tokens())
    return make_error(ErrorKind::invalid_argument, "batch engine: a token budget of {} per step, the decoder takes {}",
                      options.token_budget, decoder->max_tokens());
  auto n_blocks = pool_blocks(options, decoder->kv_bytes_per_token(),
                              decoder->default_kv_bytes(options.max_seqs, options.n_ctx));
  if (!n_blocks) return n_blocks.status();
  EMBER_RETURN_IF_ERROR(decoder->allocate_kv(*n_blocks, options.block_size));
  return std::unique_ptr<BatchEngine>(new BatchEngine(model, std::move(decoder), options, *n_blocks, threads));
}

BatchEngine::BatchEngine(const model::Model& model, std::unique_ptr<model::BatchDecoder> decoder,
                         BatchEngineOptions options, int n_blocks, ThreadPool& threads)
    : model_(model),
      options_(options),
      banned_(invalid_tokens(model.tokenizer, model.spec.n_vocab)),
      decoder_(std::move(decoder)),
      threads_(threads),
      pool_(n_blocks, options.block_size),
      scheduler_({options.max_seqs, options.token_budget}, pool_) {
  publish_stats();
  thread_ = std::thread([this] { worker(); });
}

BatchEngine::~BatchEngine() { shutdown(false); }

Expected<RequestId> BatchEngine::submit(EngineRequest request, EventFn on_event) {
  const int n_vocab = model_.spec.n_vocab;
  if (request.prompt.empty()) return make_error(ErrorKind::invalid_argument, "the prompt is empty");
  if (int64_t(request.prompt.size()) >= options_.n_ctx)
    return make_error(ErrorKind::invalid_argument,
                      "the prompt has {} tokens; this model's context is {} tokens (prompt plus completion)",
                      request.prompt.size(), options_.n_ctx);
  for (int32_t t : request.prompt)
    if (t < 0 || t >= n_vocab) return make_error(ErrorKind::invalid_argument, "prompt token id {} is out of range", t);
  for (const auto& [t, b] : request.logit_bias)
    if (t < 0 || t >= n_vocab)
      return make_error(ErrorKind::invalid_argument, "logit_bias: token id {} is out of range", t);
  auto seq = std::make_unique<Sequence>();
  seq->request = std::move(request);
  seq->on_event = std::move(on_event);
  seq->submitted_at = now_seconds();
  seq->tokens = seq->request.prompt;
  seq->n_prompt = int(seq->tokens.size());
  seq->output = std::make_unique<TokenOutput>(seq->request, model_.tokenizer, banned_, &token_bytes_);
  seq->output->accept_context(seq->tokens);
  std::lock_guard lock(mu_);
  if (!accepting_) return make_error(ErrorKind::unavailable, "the server is shutting down");
  const int waiting = int(incoming_.size()) + n_waiting_;
  if (waiting >= options_.max_queue)
    return make_error(ErrorKind::overloaded, "the request queue is full ({} waiting); retry later", waiting);
  seq->id = next_id_++;
  const RequestId id = seq->id;
  incoming_.push_back(std::move(seq));
  ++stats_.waiting;
  cv_.notify_all();
  return id;
}

void BatchEngine::cancel(RequestId id) {
  std::lock_guard lock(mu_);
  cancels_.push_back(id);
  cv_.notify_all();
}

EngineStats BatchEngine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void BatchEngine::shutdown(bool drain) {
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    stopping_ = true;
    drain_ = drain_ && drain;
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void BatchEngine::worker() {
  bool has_work = false;
  while (take_inputs(has_work)) {
    try {
      step();
    } catch (const std::exception& e) {  // nothing may escape the engine thread
      log(LogLevel::error, "engine: a step failed: {}", e.what());
      for (auto& seq : scheduler_.remove_all()) end_removed(std::move(seq), FinishReason::error, e.what());
    }
    has_work = !scheduler_.empty();
    publish_stats();
  }
  publish_stats();
}

// Waits for work, then moves new requests into the scheduler and applies cancellations.
bool BatchEngine::take_inputs(bool has_work) {
  std::deque<std::unique_ptr<Sequence>> incoming;
  std::vector<RequestId> cancels;
  bool stopping = false, cancel_all = false;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return has_work || stopping_ || !incoming_.empty() || !cancels_.empty(); });
    incoming.swap(incoming_);
    cancels.swap(cancels_);
    stopping = stopping_;
    cancel_all = stopping_ && !drain_;
  }
  for (auto& seq : incoming) scheduler_.add(std::move(seq));
  for (RequestId id : cancels)
    if (auto seq = scheduler_.remove(id)) end_removed(std::move(seq), FinishReason::cancelled);
  if (cancel_all)
    for (auto& seq : scheduler_.remove_all()) end_removed(std::move(seq), FinishReason::cancelled);
  if (!incoming.empty() || !cancels.empty()) publish_stats();
  return !(stopping && scheduler_.empty());
}

void BatchEngine::step() {
  StepPlan plan = scheduler_.schedule();
  for (auto& [seq, message] : plan.rejected) end_removed(std::move(seq), FinishReason::error, message);
  if (!plan.chunks.empty()) run_chunks(plan);
}

// Runs this step's chunks as one batch, then advances every sequence in it.
void BatchEngine::run_chunks(const StepPlan& plan) {
  batch_.clear();
  std::vector<bool> wants_logits;
  for (const Chunk& c : plan.chunks) {
    Sequence& s = *c.seq;
    wants_logits.push_back(c.wants_logits());
    batch_.add_sequence(std::span<const int32_t>(s.tokens).subspan(size_t(s.n_computed), size_t(c.n_tokens)),
                        s.n_computed, s.blocks.ids(), wants_logits.back());
  }
  Status st = batch_.plan(pool_.block_size(), pool_.n_blocks());
  if (st) st = decoder_->forward_batch(batch_, logits_);
  std::vector<RequestId> done;
  const size_t n_vocab = size_t(model_.spec.n_vocab);
  size_t row = 0;
  std::vector<std::pair<Sequence*, size_t>> to_sample;  // (sequence, logits row)
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    Sequence& s = *plan.chunks[i].seq;
    if (!st) {
      end(s, FinishReason::error, st.message());
      done.push_back(s.id);
      continue;
    }
    s.n_computed += plan.chunks[i].n_tokens;
    kv::publish_full_blocks(pool_, s.tokens, s.n_computed, s.blocks);
    if (!s.prompt_counted && s.n_computed >= s.n_prompt) {
      s.prompt_counted = true;
      std::lock_guard lock(mu_);
      stats_.prompt_tokens += uint64_t(s.n_prompt);
    }
    if (wants_logits[i]) to_sample.emplace_back(&s, row++);
  }
  // Each sequence samples from its own row with its own state: in parallel, one thread per
  // sequence at a time, so a sequence's events stay in order.
  std::vector<char> seq_done(to_sample.size(), 0);
  threads_.parallel_for(int64_t(to_sample.size()), [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const auto [seq, r] = to_sample[size_t(i)];
      seq_done[size_t(i)] = handle_logits(*seq, std::span<float>(logits_.data() + r * n_vocab, n_vocab));
    }
  });
  for (size_t i = 0; i < to_sample.size(); ++i)
    if (seq_done[i]) done.push_back(to_sample[i].first->id);
  // Free the finished sequences' blocks and publish that before their finish events, so
  // a client that has its answer sees the cache already released.
  std::vector<std::unique_ptr<Sequence>> finished;
  for (RequestId id : done) finished.push_back(scheduler_.remove(id));
  deliver(std::move(finished));
}

// The sequence's next token: sample, emit, and finish it when generation ends (true).
// Runs on a pool thread: touches only `s` and (under the lock) the stats.
bool BatchEngine::handle_logits(Sequence& s, std::span<float> logits) {
  if (s.output->at_max_tokens()) {
    end(s, FinishReason::length);
    return true;
  }
  const TokenOutput::Step step = s.output->sample(logits, s.on_event);
  const double t = now_seconds();
  {
    std::lock_guard lock(mu_);
    if (s.output->n_generated() == 1) stats_.ttft.observe(t - s.submitted_at);
    else stats_.inter_token.observe(t - s.last_token_at);
    ++stats_.generation_tokens;
  }
  s.last_token_at = t;
  if (step.no_token) {
    end(s, FinishReason::error, "the response format's grammar allows no token here");
    return true;
  }
  if (!step.finished) s.tokens.push_back(step.token);
  if (step.finished || int(s.tokens.size()) >= options_.n_ctx) {
    end(s, step.finished ? FinishReason::stop : FinishReason::length);
    return true;
  }
  return false;
}

// Records how `s` ends; deliver() sends the finish event once its blocks are free.
void BatchEngine::end(Sequence& s, FinishReason reason, std::string error) {
  if (reason == FinishReason::stop || reason == FinishReason::length) s.output->flush(s.on_event);
  s.finish_reason = reason;
  s.error = std::move(error);
}

void BatchEngine::end_removed(std::unique_ptr<Sequence> seq, FinishReason reason, std::string error) {
  end(*seq, reason, std::move(error));
  std::vector<std::unique_ptr<Sequence>> one;
  one.push_back(std::move(seq));
  deliver(std::move(one));
}

// Releases the sequences' blocks, publishes the stats, then sends their finish events.
void BatchEngine::deliver(std::vector<std::unique_ptr<Sequence>> seqs) {
  if (seqs.empty()) return;
  for (auto& s : seqs) s->blocks.clear();
  {
    std::lock_guard lock(mu_);
    stats_.requests_finished += seqs.size();
  }
  publish_stats();
  for (auto& s : seqs) {
    EngineEvent ev;
    ev.kind = EngineEvent::Kind::finish;
    ev.reason = s->finish_reason;
    ev.error = s->error;
    ev.n_prompt = s->n_prompt;
    ev.n_completion = s->output->n_generated();
    ev.n_cached = std::max(0, s->n_cached);
    try {
      s->on_event(ev);
    } catch (const std::exception& e) {
      log(LogLevel::warn, "engine: an event callback threw: {}", e.what());
    }
  }
}

void BatchEngine::publish_stats() {
  std::lock_guard lock(mu_);
  n_waiting_ = scheduler_.n_waiting();
  stats_.running = scheduler_.n_running();
  stats_.waiting = n_waiting_ + int(incoming_.size());
  stats_.kv_blocks_total = uint64_t(pool_.n_blocks());
  stats_.kv_blocks_used = uint64_t(pool_.n_blocks() - pool_.n_free());
  stats_.kv_usage = pool_.n_blocks() > 0 ? double(stats_.kv_blocks_used) / double(pool_.n_blocks()) : 0.0;
  stats_.preemptions = scheduler_.n_preemptions();
}

}  // namespace ember::runtime
