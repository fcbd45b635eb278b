#include "runtime/scheduler.h"

#include <algorithm>

#include <fmt/format.h>

namespace ember::runtime {

void Scheduler::add(std::unique_ptr<Sequence> seq) {
  if (!seq->blocks.n_blocks()) seq->blocks = kv::BlockTable(pool_);
  waiting_.push_back(std::move(seq));
}

// Pass 1: running decodes (one token each), oldest first. Pass 2: prefill chunks of
// running sequences. Pass 3 (only when nothing was preempted): admit waiting ones.
StepPlan Scheduler::schedule() {
  StepPlan plan;
  int budget = std::max(1, options_.token_budget);
  schedule_running(budget, plan);
  if (plan.n_preempted == 0) schedule_waiting(budget, plan);
  return plan;
}

void Scheduler::schedule_running(int& budget, StepPlan& plan) {
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size() && budget > 0;) {
      Sequence& seq = *running_[i];
      const int remaining = int(seq.tokens.size()) - seq.n_computed;
      if (remaining <= 0 || (remaining == 1) != (pass == 0)) {
        ++i;
        continue;
      }
      const int n = std::min(remaining, budget);
      if (!make_room(seq, n, plan)) continue;  // seq left running_ (preempted: it was the newest, or rejected)
      // Preempting a newer sequence may have returned its budget.
      budget = std::max(1, options_.token_budget);
      for (const Chunk& c : plan.chunks) budget -= c.n_tokens;
      plan.chunks.push_back({&seq, n});
      budget -= n;
      ++i;
    }
  }
}

// Reserves blocks for `n_tokens` more tokens of running `seq`, preempting the newest
// running sequences while the pool is short. False when `seq` itself had to go.
bool Scheduler::make_room(Sequence& seq, int n_tokens, StepPlan& plan) {
  while (!seq.blocks.reserve(seq.n_computed + n_tokens)) {
    if (running_.size() == 1) {
      reject_running(seq, plan);
      return false;
    }
    Sequence* victim = running_.back().get();
    std::erase_if(plan.chunks, [&](const Chunk& c) { return c.seq == victim; });
    preempt_newest();
    ++plan.n_preempted;
    if (victim == &seq) return false;
  }
  return true;
}

void Scheduler::preempt_newest() {
  std::unique_ptr<Sequence> seq = std::move(running_.back());
  running_.pop_back();
  seq->blocks.clear();  // its full blocks stay in the prefix cache until reused
  seq->n_computed = 0;
  waiting_.push_front(std::move(seq));
  ++n_preemptions_;
}

void Scheduler::reject_running(Sequence& seq, StepPlan& plan) {
  auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == &seq; });
  std::unique_ptr<Sequence> owned = std::move(*it);
  running_.erase(it);
  const int need = blocks_for(int(owned->tokens.size()) + 1);
  owned->blocks.clear();
  plan.rejected.emplace_back(std::move(owned),
                             fmt::format("the KV cache is too small for this request: {} tokens need {} blocks of {} "
                                         "tokens, the cache has {} (raise --kv-cache-gb)",
                                         seq.tokens.size() + 1, need, pool_.block_size(), pool_.n_blocks()));
}

void Scheduler::schedule_waiting(int& budget, StepPlan& plan) {
  while (budget > 0 && !waiting_.empty() && int(running_.size()) < options_.max_seqs) {
    Sequence& seq = *waiting_.front();
    const int total = int(seq.tokens.size());
    if (blocks_for(total) > pool_.n_blocks()) {
      plan.rejected.emplace_back(std::move(waiting_.front()),
                                 fmt::format("the KV cache is too small for this request: {} tokens need {} blocks of "
                                             "{} tokens, the cache has {} (raise --kv-cache-gb)",
                                             total, blocks_for(total), pool_.block_size(), pool_.n_blocks()));
      waiting_.pop_front();
      continue;
    }
    const int hit = seq.n_computed == 0 ? kv::match_prefix(pool_, seq.tokens, seq.blocks) : seq.n_computed;
    seq.n_computed = hit;
    const int n = std::min(total - seq.n_computed, budget);
    if (!seq.blocks.reserve(seq.n_computed + n)) {
      seq.blocks.clear();  // a waiting sequence holds no blocks
      seq.n_computed = 0;
      break;
    }
    if (seq.n_cached < 0) seq.n_cached = hit;
    plan.chunks.push_back({&seq, n});
    budget -= n;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

std::unique_ptr<Sequence> Scheduler::remove(RequestId id) {
  auto match = [&](const auto& s) { return s->id == id; };
  if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
    std::unique_ptr<Sequence> seq = std::move(*it);
    running_.erase(it);
    return seq;
  }
  if (auto it = std::find_if(waiting_.begin(), waiting_.end(), match); it != waiting_.end()) {
    std::unique_ptr<Sequence> seq = std::move(*it);
    waiting_.erase(it);
    return seq;
  }
  return nullptr;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::remove_all() {
  std::vector<std::unique_ptr<Sequence>> all;
  for (auto& s : running_) all.push_back(std::move(s));
  for (auto& s : waiting_) all.push_back(std::move(s));
  running_.clear();
  waiting_.clear();
  return all;
}

}  // namespace ember::runtime
