// Mixture-of-experts kernels: see moe.h. The expert GEMV reuses gemv.cu's row loops
// (gemv_device.cuh) with the matrix picked per block from a device array of expert ids.
#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv_device.cuh"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/pdl.cuh"

namespace ember::cuda {

namespace {

constexpr int kRouteWarps = 4;  // tokens per block of moe_route
constexpr int kMoeWarps = 4;    // output rows per block of moe_gemv (one warp each)

// Best (value, index) of the warp: the larger value, ties to the lower index.
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int oi = __shfl_xor_sync(0xffffffffu, i, off);
    if (ov > v || (ov == v && oi < i)) {
      v = ov;
      i = oi;
    }
  }
}

// One warp per token; its probabilities in shared memory. Same arithmetic as model::route:
// the softmax in double rounded to float, top-k on the floats, weights renormalised in double.
__global__ void __launch_bounds__(32 * kRouteWarps) moe_route_kernel(MoeRouteParams p) {
  __shared__ float probs[kRouteWarps][kMoeMaxExperts];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= p.n_tokens) return;  // uniform per warp
  const float* l = p.logits + int64_t(t) * p.n_experts;
  float* pr = probs[warp];
  if (!p.sigmoid) {
    float mx = -FLT_MAX;
    for (int e = lane; e < p.n_experts; e += 32) mx = fmaxf(mx, l[e]);
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    double sum = 0.0;
    for (int e = lane; e < p.n_experts; e += 32) sum += exp(double(l[e]) - double(mx));
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    for (int e = lane; e < p.n_experts; e += 32) pr[e] = float(exp(double(l[e]) - double(mx)) / sum);
  } else {
    for (int e = lane; e < p.n_experts; e += 32) pr[e] = float(1.0 / (1.0 + exp(-double(l[e]))));
  }
  __syncwarp();
  float chosen = 0.0f;  // lane j < k keeps choice j
  int chosen_e = 0;
  double sum = 0.0;
  for (int j = 0; j < p.k; ++j) {
    float v = -1.0f;  // probabilities are >= 0; taken experts hold -1
    int i = INT32_MAX;
    for (int e = lane; e < p.n_experts; e += 32)
      if (pr[e] > v) {  // lane-strided order: the first (lowest) index wins ties
        v = pr[e];
        i = e;
      }
    warp_argmax(v, i);
    sum += double(v);
    if (lane == j) {
      chosen = v;
      chosen_e = i;
    }
    __syncwarp();
    if (lane == 0) pr[i] = -1.0f;
    __syncwarp();
  }
  if (lane < p.k) {
    float w = chosen;
    if (p.norm_topk) w = float(double(w) / sum);
    if (p.per_expert_scale != nullptr) w *= p.per_expert_scale[chosen_e];
    w *= p.weights_scale;
    p.experts[int64_t(t) * p.k + lane] = chosen_e;
    p.weights[int64_t(t) * p.k + lane] = w;
  }
}

// One block: counts (shared atomics), offsets (warp 0 scans), then warp 0 walks the pairs
// in order, 32 at a time, so each expert's rows keep pair order.
__global__ void __launch_bounds__(1024) moe_group_kernel(MoeGroupParams p) {
  __shared__ int count[kMoeMaxExperts];
  __shared__ int cursor[kMoeMaxExperts];
  const int tid = threadIdx.x, lane = tid & 31;
  for (int e = tid; e < p.n_experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int i = tid; i < p.n_pairs; i += blockDim.x) atomicAdd(&count[p.experts[i]], 1);
  __syncthreads();
  if (tid >= 32) return;
  const int per = (p.n_experts + 31) / 32, e0 = lane * per;  // lane scans experts [e0, e0 + per)
  int local = 0;
  for (int e = e0; e < e0 + per && e < p.n_experts; ++e) local += count[e];
  int incl = local;
  for (int off = 1; off < 32; off <<= 1) {
    const int v = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += v;
  }
  int run = incl - local;
  for (int e = e0; e < e0 + per && e < p.n_experts; ++e) {
    cursor[e] = run;
    p.offsets[e] = run;
    run += count[e];
  }
  if (lane == 31) p.offsets[p.n_experts] = incl;
  __syncwarp();
  for (int base = 0; base < p.n_pairs; base += 32) {
    const int i = base + lane;
    const bool valid = i < p.n_pairs;
    const int e = valid ? p.experts[i] : -1 - lane;  // invalid lanes match nobody
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int leader = __ffs(peers) - 1;
    int at = 0;
    if (valid && lane == leader) {
      at = cursor[e];
      cursor[e] = at + __popc(peers);
    }
    at = __shfl_sync(0xffffffffu, at, leader);
    if (valid) {
      const int row = at + __popc(peers & ((1u << lane) - 1u));
      p.rows[row] = i;
      p.where[i] = row;
    }
    __syncwarp();
  }
}

__global__ void moe_gather_kernel(MoeGatherParams p) {
  const int64_t n4 = p.n / 4;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n4 * p.n_pairs) return;
  const int64_t r = i / n4, c = i % n4;
  const int64_t src = p.rows[r] / p.k;
  reinterpret_cast<float4*>(p.y)[r * n4 + c] = reinterpret_cast<const float4*>(p.x)[src * n4 + c];
}

// One warp per output row of the pair's expert; gridDim.y = pairs.
template <Type T, bool Gated>
__global__ void __launch_bounds__(32 * kMoeWarps) moe_gemv_kernel(MoeGemvParams p) {
  __shared__ uint4 smem[kMoeWarps][smem_vecs<T>()];
  pdl_trigger();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int pair = int(blockIdx.y);
  const int64_t r = int64_t(blockIdx.x) * kMoeWarps + warp;
  const int e = p.experts[pair];  // written before the previous kernel (see moe.h)
  if (r >= p.n_out || e < 0 || e >= p.n_experts) {
    pdl_wait();
    return;
  }
  GemvBatchParams q;  // the row loops' view: one token, this pair's activation row
  q.w_type = T;
  q.n_in = p.n_in;
  q.w_row_bytes = p.row_bytes;
  q.n_tokens = 1;
  q.q4k_direct = true;
  const int64_t xr = pair / p.x_div;
  q.x = p.x != nullptr ? p.x + xr * p.n_in : nullptr;
  q.xq = p.xq != nullptr ? p.xq + xr * p.n_in : nullptr;
  q.xd = p.xd != nullptr ? p.xd + xr * (p.n_in / 32) : nullptr;
  const int64_t at = int64_t(e) * p.expert_bytes + r * p.row_bytes;
  const uint8_t* row = static_cast<const uint8_t*>(p.w) + at;
  const bool late = p.pdl;
  float acc[1], up[1];
  if constexpr (Gated) {
    const uint8_t* up_row = static_cast<const uint8_t*>(p.w_up) + at;
    if constexpr (T == Type::Q4_K) {  // both rows' loads in flight together
      float gu[2][1] = {{0.0f}, {0.0f}};
      const uint8_t* const rows[2] = {row, up_row};
      dot_q4_k<1, 2>(rows, q, gu, lane, late);
      pdl_wait();
      acc[0] = warp_sum(gu[0][0]);
      up[0] = warp_sum(gu[1][0]);
    } else {
      row_dot<T, 1>(row, q, acc, smem[warp], lane, late);
      row_dot<T, 1>(up_row, q, up, smem[warp], lane, late);
    }
    if (lane == 0) p.y[int64_t(pair) * p.n_out + r] = gated(acc[0], up[0], p.act);
  } else {
    row_dot<T, 1>(row, q, acc, smem[warp], lane, late);
    if (lane == 0) p.y[int64_t(pair) * p.n_out + r] = acc[0];
  }
}

__global__ void moe_combine_kernel(MoeCombineParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n * p.n_tokens) return;
  const int64_t t = i / p.n, c = i % p.n;
  float s = 0.0f;
  for (int j = 0; j < p.k; ++j) {
    const int64_t pair = t * p.k + j;
    const int64_t row = p.where != nullptr ? p.where[pair] : pair;
    s += p.weights[pair] * p.y[row * p.n + c];
  }
  if (p.shared != nullptr) {
    const float g = p.shared_gate != nullptr ? float(1.0 / (1.0 + exp(-double(p.shared_gate[t])))) : 1.0f;
    s += g * p.shared[i];
  }
  p.out[i] = s;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <Type T, bool Gated>
Status launch_gemv(const MoeGemvParams& p, cudaStream_t stream) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned((p.n_out + kMoeWarps - 1) / kMoeWarps), unsigned(p.n_pairs));
  cfg.blockDim = dim3(32 * kMoeWarps);
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = p.pdl ? 1 : 0;
  const cudaError_t err = cudaLaunchKernelEx(&cfg, moe_gemv_kernel<T, Gated>, p);
  if (err != cudaSuccess) return cuda_status(err, "moe_gemv");
  return cuda_status(cudaGetLastError(), "moe_gemv");
}

template <bool Gated>
Status dispatch_gemv(const MoeGemvParams& p, cudaStream_t stream) {
  switch (p.w_type) {
    case Type::F16: return launch_gemv<Type::F16, Gated>(p, stream);
    case Type::BF16: return launch_gemv<Type::BF16, Gated>(p, stream);
    case Type::Q4_K: return launch_gemv<Type::Q4_K, Gated>(p, stream);
    case Type::Q6_K: return launch_gemv<Type::Q6_K, Gated>(p, stream);
    case Type::Q8_0: return launch_gemv<Type::Q8_0, Gated>(p, stream);
    default: return make_error(ErrorKind::unsupported, "moe_gemv: no kernel for {}", quant::type_name(p.w_type));
  }
}

}  // namespace

Status moe_route(const MoeRouteParams& p, cudaStream_t stream) {
  if (p.n_experts < 1 || p.n_experts > kMoeMaxExperts || p.k < 1 || p.k > p.n_experts || p.k > kMoeMaxTopK ||
      p.n_tokens < 0)
    return make_error(ErrorKind::invalid_argument, "moe_route: {} experts, top-{} (supported: up to {} experts, "
                      "top-{})", p.n_experts, p.k, kMoeMaxExperts, kMoeMaxTopK);
  if (p.n_tokens == 0) return {};
  if (p.logits == nullptr || p.experts == nullptr || p.weights == nullptr)
    return make_error(ErrorKind::invalid_argument, "moe_route: missing buffers");
  const unsigned blocks = unsigned((p.n_tokens + kRouteWarps - 1) / kRouteWarps);
  moe_route_kernel<<<blocks, 32 * kRouteWarps, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "moe_route");
}

Status moe_group(const MoeGroupParams& p, cudaStream_t stream) {
  if (p.n_experts < 1 || p.n_experts > kMoeMaxExperts || p.n_pairs < 0)
    return make_error(ErrorKind::invalid_argument, "moe_group: {} experts, {} pairs", p.n_experts, p.n_pairs);
  if (p.experts == nullptr || p.offsets == nullptr || (p.n_pairs > 0 && (p.rows == nullptr || p.where == nullptr)))
    return make_error(ErrorKind::invalid_argument, "moe_group: missing buffers");
  moe_group_kernel<<<1, 1024, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "moe_group");
}

Status moe_gather(const MoeGatherParams& p, cudaStream_t stream) {
  if (p.n % 4 != 0 || p.k < 1 || p.n_pairs < 0 || !aligned16(p.x) || !aligned16(p.y))
    return make_error(ErrorKind::invalid_argument, "moe_gather: rows of {} (multiple of 4, 16-byte aligned)", p.n);
  const int64_t threads = p.n / 4 * p.n_pairs;
  if (threads == 0) return {};
  const int64_t blocks = (threads + 255) / 256;
  if (blocks > INT32_MAX) return make_error(ErrorKind::invalid_argument, "moe_gather: too large");
  moe_gather_kernel<<<unsigned(blocks), 256, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "moe_gather");
}

bool moe_gemv_supported(quant::Type t, int64_t n_in) {
  switch (t) {
    case Type::F16: case Type::BF16: return n_in > 0 && n_in % 8 == 0;
    case Type::Q8_0: return n_in > 0 && n_in % 32 == 0;
    case Type::Q4_K: case Type::Q6_K: return n_in > 0 && n_in % 256 == 0;
    default: return false;
  }
}

int64_t moe_gemv_row_stride(quant::Type t, int64_t n_in) {
  const auto rb = quant::row_bytes(t, n_in);
  return rb ? (*rb + 15) / 16 * 16 : 0;
}

Status moe_gemv(const MoeGemvParams& p, cudaStream_t stream) {
  if (!moe_gemv_supported(p.w_type, p.n_in))
    return make_error(ErrorKind::unsupported, "moe_gemv: {} rows of {} are not supported", quant::type_name(p.w_type),
                      p.n_in);
  if (p.row_bytes != moe_gemv_row_stride(p.w_type, p.n_in) || p.expert_bytes < p.row_bytes * p.n_out ||
      p.expert_bytes % 16 != 0 || p.n_experts < 1)
    return make_error(ErrorKind::invalid_argument, "moe_gemv: row stride {} / expert stride {} do not fit {} x {} {}",
                      p.row_bytes, p.expert_bytes, p.n_out, p.n_in, quant::type_name(p.w_type));
  if (p.n_pairs < 0 || p.n_pairs > 65535 || p.x_div < 1 || p.n_out < 0 || p.n_out > int64_t(INT32_MAX) * kMoeWarps)
    return make_error(ErrorKind::invalid_argument, "moe_gemv: {} pairs, {} rows", p.n_pairs, p.n_out);
  const bool q8 = gemv_fast_uses_q8(p.w_type);
  if (q8 ? (p.xq == nullptr || p.xd == nullptr || !aligned16(p.xq)) : (p.x == nullptr || !aligned16(p.x)))
    return make_error(ErrorKind::invalid_argument, "moe_gemv: missing or misaligned activations");
  if (p.w == nullptr || !aligned16(p.w) || p.y == nullptr || p.experts == nullptr ||
      (p.gated && (p.w_up == nullptr || !aligned16(p.w_up))))
    return make_error(ErrorKind::invalid_argument, "moe_gemv: missing or misaligned weights or buffers");
  if (p.n_pairs == 0 || p.n_out == 0) return {};
  return p.gated ? dispatch_gemv<true>(p, stream) : dispatch_gemv<false>(p, stream);
}

Status moe_combine(const MoeCombineParams& p, cudaStream_t stream) {
  if (p.n_tokens < 0 || p.k < 1 || p.n < 0 || p.y == nullptr || p.weights == nullptr || p.out == nullptr)
    return make_error(ErrorKind::invalid_argument, "moe_combine: bad shape or buffers");
  const int64_t threads = p.n * p.n_tokens;
  if (threads == 0) return {};
  const int64_t blocks = (threads + 255) / 256;
  if (blocks > INT32_MAX) return make_error(ErrorKind::invalid_argument, "moe_combine: too large");
  moe_combine_kernel<<<unsigned(blocks), 256, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "moe_combine");
}

}  // namespace ember::cuda
