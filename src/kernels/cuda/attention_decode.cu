// Split-KV decode attention: partial online softmax per slice of keys, then a combine.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"

namespace ember::cuda {

namespace {

using attn::kPairs;

constexpr int kWarps = 4;
constexpr int64_t kMinSplit = 64;  // keys per slice at least

struct DecodeArgs {
  AttentionParams p;
  float* acc;        // [n_tokens][n_heads][n_splits][head_dim] unnormalised sums
  float* ml;         // [n_tokens][n_heads][n_splits][2] running max, sum of exp
  int n_splits;
  int64_t split_len;
  int64_t keys_lo;   // first key any query row may see
};

__device__ void combine_one(const DecodeArgs& a, int h, int t);

// Warp w of the block takes keys begin + w, begin + w + kWarps, ...; lanes split the
// head dims. The warps' states are merged in shared memory at the end.
__global__ void __launch_bounds__(32 * kWarps) decode_partial_kernel(DecodeArgs a) {
  pdl_trigger();
  const AttentionParams& p = a.p;
  const int s = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int hd = p.head_dim;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  int64_t pos0 = p.pos0, keys_lo = a.keys_lo, split_len = a.split_len;
  if (p.pos_dev != nullptr) {  // the same split as the host computes, from the device position
    pos0 = *p.pos_dev;
    keys_lo = p.window > 0 ? max(int64_t(0), pos0 - p.window + 1) : 0;
    const int64_t range = pos0 + p.n_tokens - keys_lo;
    split_len = max(kMinSplit, (range + a.n_splits - 1) / a.n_splits);
  }
  const int64_t q_pos = pos0 + t;
  const int64_t slice0 = keys_lo + int64_t(s) * split_len;
  const int64_t begin = max(attn::first_key(q_pos, p.window), slice0);
  const int64_t end = min(q_pos + 1, slice0 + split_len);
  const int64_t kv_stride = int64_t(p.n_kv_heads) * hd;

  float2 q[kPairs];
  float2 acc[kPairs];
  const float* q_row = p.q + (int64_t(t) * p.n_heads + h) * hd;
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    const int d = 2 * lane + 64 * i;
    q[i] = d < hd ? make_float2(q_row[d], q_row[d + 1]) : make_float2(0.0f, 0.0f);
    acc[i] = make_float2(0.0f, 0.0f);
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    const __half2* k_row = reinterpret_cast<const __half2*>(p.k + j * kv_stride + int64_t(kvh) * hd);
    const __half2* v_row = reinterpret_cast<const __half2*>(p.v + j * kv_stride + int64_t(kvh) * hd);
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPairs; ++i) {
      if (2 * lane + 64 * i < hd) {
        const float2 k = __half22float2(k_row[lane + 32 * i]);
        dot += q[i].x * k.x + q[i].y * k.y;
      }
    }
    const float score = attn::cap_score(attn::warp_sum(dot), p);
    const float m_new = fmaxf(m, score);
    const float corr = expf(m - m_new), w = expf(score - m_new);
    l = l * corr + w;
#pragma unroll
    for (int i = 0; i < kPairs; ++i) {
      if (2 * lane + 64 * i < hd) {
        const float2 v = __half22float2(v_row[lane + 32 * i]);
        acc[i].x = acc[i].x * corr + w * v.x;
        acc[i].y = acc[i].y * corr + w * v.y;
      }
    }
    m = m_new;
  }

  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ float sm_acc[kWarps][kAttentionMaxHeadDim];
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    const int d = 2 * lane + 64 * i;
    if (d < hd) {
      sm_acc[warp][d] = acc[i].x;
      sm_acc[warp][d + 1] = acc[i].y;
    }
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm_m[w]);
  const int64_t idx = (int64_t(t) * p.n_heads + h) * a.n_splits + s;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float sum_l = 0.0f, sum_a = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (sm_m[w] == -INFINITY) continue;
      const float f = expf(sm_m[w] - mx);
      sum_l += sm_l[w] * f;
      sum_a += sm_acc[w][d] * f;
    }
    a.acc[idx * hd + d] = sum_a;
    if (d == 0) {
      a.ml[2 * idx] = mx;
      a.ml[2 * idx + 1] = sum_l;
    }
  }
  if (p.counters == nullptr) return;
  // The last slice of (t, h) to finish merges them all (threadfence + counter pattern).
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  int* counter = p.counters + int64_t(t) * p.n_heads + h;
  if (threadIdx.x == 0) last = atomicAdd(counter, 1) == a.n_splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  combine_one(a, h, t);
  if (threadIdx.x == 0) *counter = 0;  // ready for the next call (or graph replay)
}

// Merges the slices of one query row and head (blockDim threads). Loads bypass L1: with
// counters, the slices were written by other blocks of the same launch.
__device__ void combine_one(const DecodeArgs& a, int h, int t) {
  const AttentionParams& p = a.p;
  const int64_t idx0 = (int64_t(t) * p.n_heads + h) * a.n_splits;
  float mx = -INFINITY;
  for (int s = 0; s < a.n_splits; ++s) mx = fmaxf(mx, __ldcg(a.ml + 2 * (idx0 + s)));
  const int64_t row0 = int64_t(t) * p.n_heads * p.head_dim, col0 = int64_t(h) * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float sum_l = 0.0f, sum_a = 0.0f;
    for (int s = 0; s < a.n_splits; ++s) {
      const float ms = __ldcg(a.ml + 2 * (idx0 + s));
      if (ms == -INFINITY) continue;
      const float f = expf(ms - mx);
      sum_l += __ldcg(a.ml + 2 * (idx0 + s) + 1) * f;
      sum_a += __ldcg(a.acc + (idx0 + s) * p.head_dim + d) * f;
    }
    const float o = sum_a / sum_l;
    p.out[row0 + col0 + d] = o;
    if (p.out_q != nullptr) {  // head_dim % 32 == 0: each warp holds one whole group of 32
      float amax = fabsf(o);
      for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
      const float qd = amax / 127.0f;
      p.out_q[row0 + col0 + d] = int8_t(__float2int_rn(qd > 0.0f ? o / qd : 0.0f));
      if ((d & 31) == 0) p.out_d[(row0 + col0 + d) / 32] = qd;
    }
  }
}

// grid (heads, tokens): merges the slices of one query row and head.
__global__ void decode_combine_kernel(DecodeArgs a) {
  pdl_trigger();
  combine_one(a, blockIdx.x, blockIdx.y);
}

}  // namespace

size_t attention_decode_workspace(int n_tokens, int n_heads, int head_dim, int max_splits) {
  return size_t(n_tokens) * size_t(n_heads) * size_t(max_splits) * (size_t(head_dim) + 2);
}

Status attention_decode(const AttentionParams& p, float* workspace, int max_splits, cudaStream_t stream) {
  EMBER_RETURN_IF_ERROR(attn::check_params("attention_decode", p));
  if (p.n_tokens <= 0) return {};
  if (max_splits < 1 || max_splits > 65535)
    return make_error(ErrorKind::invalid_argument, "attention_decode: max_splits {} out of range", max_splits);
  DecodeArgs a{p, nullptr, nullptr, 0, 0, 0};
  if (p.pos_dev != nullptr) {
    a.n_splits = max_splits;  // slices past the keys come out empty
  } else {
    a.keys_lo = p.window > 0 ? std::max<int64_t>(0, p.pos0 - p.window + 1) : 0;
    const int64_t range = p.pos0 + p.n_tokens - a.keys_lo;
    a.split_len = std::max<int64_t>(kMinSplit, (range + max_splits - 1) / max_splits);
    a.n_splits = int((range + a.split_len - 1) / a.split_len);
  }
  a.acc = workspace;
  a.ml = workspace + size_t(p.n_tokens) * p.n_heads * a.n_splits * p.head_dim;
  if ((p.out_q != nullptr || p.out_d != nullptr) &&
      (p.counters == nullptr || p.out_q == nullptr || p.out_d == nullptr || p.head_dim % 32 != 0))
    return make_error(ErrorKind::invalid_argument, "attention_decode: the int8 output needs counters, out_q, out_d "
                      "and head_dim % 32 == 0 (head_dim {})", p.head_dim);
  decode_partial_kernel<<<dim3(unsigned(a.n_splits), unsigned(p.n_heads), unsigned(p.n_tokens)), 32 * kWarps, 0,
                          stream>>>(a);
  EMBER_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "attention_decode (partial)"));
  if (p.counters != nullptr) return {};  // merged by the last slice of each row
  decode_combine_kernel<<<dim3(unsigned(p.n_heads), unsigned(p.n_tokens)), 128, 0, stream>>>(a);
  return cuda_status(cudaGetLastError(), "attention_decode (combine)");
}

}  // namespace ember::cuda
