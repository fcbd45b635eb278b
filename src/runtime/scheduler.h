// The continuous-batching scheduler (docs/kv.md). It deals only in tokens: every
// sequence has `tokens` (prompt, then generated) of which `n_computed` have their
// keys/values in the paged cache; each step hands out token counts under a budget.
// Decodes, chunked prefill, prefix-cache hits and preemption (drop the blocks, compute
// again later) all fall out of that. It owns the sequences and never runs the model.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "kv/block_pool.h"
#include "runtime/engine.h"
#include "runtime/token_output.h"

namespace ember::runtime {

struct Sequence {
  RequestId id = 0;
  EngineRequest request;
  EventFn on_event;
  double submitted_at = 0.0, last_token_at = 0.0;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int n_prompt = 0;
  int n_computed = 0;           // tokens whose keys/values are in the cache
  int n_cached = -1;            // prompt tokens found in the prefix cache at first admission
  bool prompt_counted = false;  // its prompt tokens are in the stats
  kv::BlockTable blocks;
  std::unique_ptr<TokenOutput> output;
  FinishReason finish_reason = FinishReason::stop;  // set when it ends
  std::string error;
};

struct SchedulerOptions {
  int max_seqs = 16;      // sequences running at once
  int token_budget = 64;  // tokens computed per step (decodes and prefill chunks together)
};

// This step's work for one sequence: compute tokens [n_computed, n_computed + n_tokens).
struct Chunk {
  Sequence* seq = nullptr;
  int n_tokens = 0;
  bool wants_logits() const { return seq->n_computed + n_tokens == int(seq->tokens.size()); }
};

struct StepPlan {
  std::vector<Chunk> chunks;
  // Sequences that cannot run even alone (the cache is too small); the caller finishes
  // them with this error.
  std::vector<std::pair<std::unique_ptr<Sequence>, std::string>> rejected;
  int n_preempted = 0;
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions options, kv::BlockPool& pool) : options_(options), pool_(pool) {}

  void add(std::unique_ptr<Sequence> seq);  // to the back of the waiting queue
  StepPlan schedule();
  // Takes a sequence out (finished or cancelled); its blocks go back when it is destroyed.
  std::unique_ptr<Sequence> remove(RequestId id);
  std::vector<std::unique_ptr<Sequence>> remove_all();

  int n_running() const { return int(running_.size()); }
  int n_waiting() const { return int(waiting_.size()); }
  bool empty() const { return running_.empty() && waiting_.empty(); }
  uint64_t n_preemptions() const { return n_preemptions_; }

 private:
  int blocks_for(int n_tokens) const { return (n_tokens + pool_.block_size() - 1) / pool_.block_size(); }
  void schedule_running(int& budget, StepPlan& plan);
  void schedule_waiting(int& budget, StepPlan& plan);
  bool make_room(Sequence& seq, int n_tokens, StepPlan& plan);
  void preempt_newest();
  void reject_running(Sequence& seq, StepPlan& plan);

  SchedulerOptions options_;
  kv::BlockPool& pool_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order, newest last
  std::deque<std::unique_ptr<Sequence>> waiting_;
  uint64_t n_preemptions_ = 0;
};

}  // namespace ember::runtime
