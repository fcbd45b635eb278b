// The mixture-of-experts FFN on the CPU (docs/moe.md): router logits (f32) -> gating ->
// top-k -> weights; tokens grouped by expert (for each expert the list of tokens routed to
// it, one matmul per expert over those tokens); weighted sum of the expert outputs.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/spec.h"
#include "model/weights.h"

namespace ember::model {

// Each token's k experts and their weights, in descending router probability.
struct Routing {
  int n_tokens = 0, k = 0;
  std::vector<int32_t> expert;  // [n_tokens][k]
  std::vector<float> weight;    // [n_tokens][k]
};

// logits: [n][n_experts] router logits -> routing (gating, top-k, renormalisation, scales).
// per_expert_scale: [n_experts] or null.
void route(const MoeSpec& spec, const float* logits, int n, const float* per_expert_scale, Routing& r);

// The tokens routed to each expert: expert e owns entries [offset[e], offset[e + 1]) of
// token (row of the batch) and slot (which of that token's k choices), in token order.
struct ExpertGroups {
  std::vector<int32_t> offset;  // [n_experts + 1]
  std::vector<int32_t> token, slot;
};
void group_by_expert(const Routing& r, int n_experts, ExpertGroups& g);

// Owns the scratch buffers of one decoder's MoE layers (grown to the largest batch seen).
class MoeFfn {
 public:
  MoeFfn(const ModelSpec& spec, ThreadPool& pool) : spec_(spec), pool_(pool) {}

  // out: [n][n_embd] = Σ_k w_k · expert_k(x) (+ the shared expert), x: [n][n_embd] the
  // normed FFN input. resid: [n][n_embd] the residual stream (the Gemma 4 router reads it).
  void forward(const MoeWeights& w, const float* x, const float* resid, int n, float* out);
  // Gemma 4's experts beside the dense MLP: out (the dense output) becomes
  // dense_post_norm(out) + post_norm(experts(pre_norm(resid))).
  void add_parallel(const MoeWeights& w, const float* resid, int n, float* out);
  const Routing& last_routing() const { return routing_; }

 private:
  void router_logits(const MoeWeights& w, const float* x, const float* resid, int n);
  void run_expert(const MoeWeights& w, int e, float* out);
  void shared_expert(const MoeWeights& w, const float* x, int n, float* out);
  void gated_mlp(const Linear& gate, const Linear& up, const Linear& down, const float* x, int m, float* y);

  const ModelSpec& spec_;
  ThreadPool& pool_;
  Routing routing_;
  ExpertGroups groups_;
  const float* x_ = nullptr;    // the current call's expert input
  std::vector<float> logits_;   // router logits        [n][n_experts]
  std::vector<float> rin_;      // router input (Gemma 4) [n][n_embd]
  std::vector<float> xe_;       // one expert's tokens  [m][n_embd]
  std::vector<float> gate_, up_;  // expert hidden      [m][n_ff]
  std::vector<float> ye_;       // one expert's output  [m][n_embd]
  std::vector<float> xin_, moe_out_;  // Gemma 4 expert input / output [n][n_embd]
};

}  // namespace ember::model
