// Helpers shared by the attention kernels (device code only).
#pragma once
#include <cuda_fp16.h>

#include "kernels/cuda/attention.h"
#include "core/status.h"

namespace ember::cuda::attn {

// Each lane owns head dims d = 2 * lane + 64 * i (i < kPairs), as half2 pairs.
constexpr int kPairs = kAttentionMaxHeadDim / 64;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

__device__ __forceinline__ float cap_score(float dot, const AttentionParams& p) {
  float s = dot * p.scale;
  if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
  return s;
}

// First key a query at position q_pos may see.
__device__ __forceinline__ int64_t first_key(int64_t q_pos, int window) {
  return window > 0 ? (q_pos - window + 1 > 0 ? q_pos - window + 1 : 0) : 0;
}

inline Status check_params(const char* what, const AttentionParams& p) {
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.head_dim > kAttentionMaxHeadDim)
    return make_error(ErrorKind::unsupported, "{}: head_dim {} (supported: even, <= {})", what, p.head_dim,
                      kAttentionMaxHeadDim);
  if (p.n_heads <= 0 || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0)
    return make_error(ErrorKind::invalid_argument, "{}: {} heads are not a multiple of {} kv heads", what, p.n_heads,
                      p.n_kv_heads);
  if (p.n_tokens > 65535 || p.n_heads > 65535 || p.pos0 < 0)
    return make_error(ErrorKind::invalid_argument, "{}: {} tokens x {} heads at {} is out of range", what, p.n_tokens,
                      p.n_heads, p.pos0);
  return {};
}

}  // namespace ember::cuda::attn
