// The one generic decoder forward on the CPU, parameterised by ModelSpec + Weights.
// Reads top to bottom like llama2.c's forward(); every buffer has a shape comment and
// a stable debug name (see dump hooks) so it can be diffed against a reference.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/forward_batch.h"
#include "model/moe.h"
#include "model/spec.h"
#include "model/weights.h"

namespace ember::model {

// Per-layer key/value cache, f32, [n_ctx][n_kv_heads * head_dim] per layer.
struct KvCache {
  int n_ctx = 0;
  std::vector<std::vector<float>> k, v;
  void init(const ModelSpec& spec, int n_ctx);
  size_t n_bytes() const;
};

// Called with (name, layer or -1, data, n_tokens, width) for every named activation.
using DumpFn = std::function<void(std::string_view name, int il, const float* data, int n_tokens, int width)>;

// One sequence's forward pass on some device. Implementations: CpuDecoder (below) and
// the CUDA decoder (model/gpu/). Not thread-safe; one sequence per decoder.
class Decoder {
 public:
  virtual ~Decoder() = default;
  // Runs `tokens` at positions [pos, pos + n) and appends them to the cache. Fills
  // `logits` (host memory) with [n][n_vocab] when all_logits, else [1][n_vocab] for the
  // last token. Positions at or after `pos` are overwritten, so a caller may rewind.
  virtual Status forward(std::span<const int32_t> tokens, int pos, bool all_logits, std::vector<float>& logits) = 0;
  virtual int n_ctx() const = 0;
  virtual void set_dump(DumpFn fn) = 0;
};

class CpuDecoder final : public Decoder {
 public:
  CpuDecoder(const ModelSpec& spec, const Weights& weights, int n_ctx, ThreadPool& pool);

  Status forward(std::span<const int32_t> tokens, int pos, bool all_logits, std::vector<float>& logits) override;
  int n_ctx() const override { return kv_.n_ctx; }
  void set_dump(DumpFn fn) override { dump_ = std::move(fn); }
  const KvCache& kv() const { return kv_; }
  // Runs every token of `batch` (several sequences at their own positions; see
  // forward_batch.h) through each matmul together and attention per sequence over the
  // paged cache `kv`, writing their keys/values there. Fills `logits` with
  // [batch.logit_rows.size()][n_vocab]. The decoder's own KV cache is not used (it may
  // be built with n_ctx 0). `batch` must be planned (ForwardBatch::plan).
  Status forward_batch(const ForwardBatch& batch, const PagedKv& kv, std::vector<float>& logits);

 private:
  void embed(std::span<const int32_t> tokens);
  void resize_activations(int n);
  void attention_block(int il, int n, int pos);
  void attention_in(int il, int n, const int32_t* positions);  // norm, q/k/v, qk-norm, rope
  void attention_out(int il, int n);                           // wo, post-norm, residual
  void paged_attention_block(int il, const ForwardBatch& batch, const PagedKv& kv);  // decoder_batch.cpp
  void output_rows(std::span<const int32_t> rows, std::vector<float>& logits);
  void ffn_block(int il, int n);  // dense MLP, experts, or both (spec.layers[il].ffn)
  void dense_ffn(int il, int n);
  void output(int n, bool all_logits, std::vector<float>& logits);
  void matmul(const Linear& w, const float* x, int n, float* y);
  void dump(std::string_view name, int il, const float* data, int n, int width);

  const ModelSpec& spec_;
  const Weights& w_;
  ThreadPool& pool_;
  KvCache kv_;
  DumpFn dump_;
  MoeFfn moe_;  // mixture-of-experts layers (model/moe.h)
  // Activations for a batch of n tokens (capacity grows to the largest batch seen).
  std::vector<int32_t> positions_;  // position of each token [n]
  std::vector<float> x_;       // residual stream      [n][n_embd]
  std::vector<float> h_;       // normed input         [n][n_embd]
  std::vector<float> q_;       // queries              [n][max_q_width]
  std::vector<float> k_, v_;   // new keys/values      [n][max_kv_width]
  std::vector<float> attn_;    // attention output     [n][max_q_width]
  std::vector<float> o_;       // block output         [n][n_embd]
  std::vector<float> gate_, up_;  // FFN              [n][n_ff]
};

}  // namespace ember::model
