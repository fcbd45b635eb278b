// Element-wise and attention ops on the CPU (f32). These are the reference twins
// of the GPU kernels; keep them plain and readable.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace ember::cpu {

// y[i] = x[i] / rms(x) * w[i] over n elements (w may be null: no scale).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

enum class RopeStyle { interleaved, neox };  // pairs (2i, 2i+1) vs (i, i + d/2)

struct RopeParams {
  int head_dim = 0;      // elements per head
  int n_rot = 0;         // rotated elements (== head_dim for supported models)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // linear scaling: position * freq_scale
  RopeStyle style = RopeStyle::interleaved;
  int n_pairs = 0;  // > 0: only the first n_pairs pairs rotate, the rest pass through (Gemma 4's
                    // "proportional" rope; frequencies still spaced over n_rot)
};
// Rotates n_heads heads laid out contiguously in x (n_heads * head_dim) at position pos.
void rope(float* x, int n_heads, int64_t pos, const RopeParams& p);

void silu_mul(const float* gate, const float* up, float* y, int64_t n);       // silu(g) * u
void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n);  // gelu_tanh(g) * u

void softmax(float* x, int64_t n);  // in place, numerically stable

struct AttentionParams {
  int n_tokens = 0;        // query rows in this batch
  int64_t pos0 = 0;        // position of the first query row
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int window = 0;          // sliding window (keys with q_pos - k_pos >= window are masked); 0 = none
  float scale = 1.0f;      // applied to q·k
  float softcap = 0.0f;    // tanh soft-capping of scores; 0 = off
  const float* q = nullptr;  // [n_tokens][n_heads * head_dim]
  const float* k = nullptr;  // cache [pos0 + n_tokens][n_kv_heads * head_dim]
  const float* v = nullptr;  // cache [pos0 + n_tokens][n_kv_heads * head_dim]
  float* out = nullptr;      // [n_tokens][n_heads * head_dim]
};
// Causal grouped-query attention over the cache; scores and softmax in fp32.
void attention(const AttentionParams& p, ThreadPool& pool);

}  // namespace ember::cpu
