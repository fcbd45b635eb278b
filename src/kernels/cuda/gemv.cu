// Bandwidth-oriented decode GEMV: see gemv.h. Block layouts: quant/blocks.h, docs/quant.md.
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/gemv_device.cuh"
#include "kernels/cuda/pdl.cuh"

namespace ember::cuda {

namespace {

using quant::Type;

constexpr int kWarps = 4;  // output rows per block (one warp each)

template <Type T, int MaxM>
__global__ void __launch_bounds__(32 * kWarps) gemv_batch_kernel(GemvBatchParams p) {
  __shared__ uint4 smem[kWarps][smem_vecs<T>()];
  pdl_trigger();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int64_t r = int64_t(blockIdx.x) * kWarps + warp;
  const bool late = p.pdl && p.pdl_late_wait;  // row_dot waits after its first weight loads
  float acc[MaxM];
  if (p.epilogue == GemvEpilogue::gated) {
    const int64_t n = p.mats[0].n_out;
    if (p.pdl && p.pdl_prefetch && !late && r < n) {
      prefetch_row(static_cast<const uint8_t*>(p.mats[0].w) + r * p.w_row_bytes, p.w_row_bytes, lane);
      prefetch_row(static_cast<const uint8_t*>(p.mats[1].w) + r * p.w_row_bytes, p.w_row_bytes, lane);
    }
    if (!late) pdl_wait();
    if (r >= n) return;
    float up[MaxM];
    const uint8_t* gate_row = static_cast<const uint8_t*>(p.mats[0].w) + r * p.w_row_bytes;
    const uint8_t* up_row = static_cast<const uint8_t*>(p.mats[1].w) + r * p.w_row_bytes;
    if constexpr (T == Type::Q4_K) {
      if (p.q4k_direct) {  // both rows' loads in flight together
        float gu[2][MaxM];
#pragma unroll
        for (int m = 0; m < MaxM; ++m) gu[0][m] = gu[1][m] = 0.0f;
        const uint8_t* const rows[2] = {gate_row, up_row};
        dot_q4_k<MaxM, 2>(rows, p, gu, lane, late);
        if (late) pdl_wait();
#pragma unroll
        for (int m = 0; m < MaxM; ++m) {
          acc[m] = warp_sum(gu[0][m]);
          up[m] = warp_sum(gu[1][m]);
        }
      } else {
        row_dot<T, MaxM>(gate_row, p, acc, smem[warp], lane, late);
        row_dot<T, MaxM>(up_row, p, up, smem[warp], lane, late);
      }
    } else {
      row_dot<T, MaxM>(gate_row, p, acc, smem[warp], lane, late);
      row_dot<T, MaxM>(up_row, p, up, smem[warp], lane, late);
    }
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < MaxM; ++m)
        if (m < p.n_tokens) p.mats[0].y[m * n + r] = gated(acc[m], up[m], p.act);
    }
    return;
  }
  int mi = 0;
  if (p.n_mats > 1 && r >= p.mats[0].n_out) {
    r -= p.mats[0].n_out;
    mi = 1;
    if (p.n_mats > 2 && r >= p.mats[1].n_out) {
      r -= p.mats[1].n_out;
      mi = 2;
    }
  }
  const GemvMat mat = mi == 0 ? p.mats[0] : mi == 1 ? p.mats[1] : p.mats[2];
  if (p.pdl && p.pdl_prefetch && !late && r < mat.n_out)
    prefetch_row(static_cast<const uint8_t*>(mat.w) + r * p.w_row_bytes, p.w_row_bytes, lane);
  if (!late) pdl_wait();
  if (r >= mat.n_out) return;
  row_dot<T, MaxM>(static_cast<const uint8_t*>(mat.w) + r * p.w_row_bytes, p, acc, smem[warp], lane, late);
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < MaxM; ++m)
      if (m < p.n_tokens) mat.y[m * mat.n_out + r] = acc[m];
  }
}

__global__ void quantize_q8_kernel(QuantizeQ8Params p) {
  pdl_trigger();
  const int64_t groups_per_row = p.n_in / 32;
  const int64_t g = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (g >= groups_per_row * p.n_tokens) return;  // uniform per warp
  const int64_t m = g / groups_per_row, b = g % groups_per_row;
  const int64_t i = m * p.n_in + b * 32 + lane;
  const float v = p.x[i];
  float amax = fabsf(v);
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  const float d = amax / 127.0f;
  p.q[i] = int8_t(__float2int_rn(d > 0.0f ? v / d : 0.0f));
  if (lane == 0) p.d[m * groups_per_row + b] = d;
}

template <Type T>
Status launch(const GemvBatchParams& p, unsigned blocks, cudaStream_t stream) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(32 * kWarps);
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = p.pdl ? 1 : 0;
  const cudaError_t err = p.n_tokens == 1 ? cudaLaunchKernelEx(&cfg, gemv_batch_kernel<T, 1>, p)
                                          : cudaLaunchKernelEx(&cfg, gemv_batch_kernel<T, kGemvFastMaxTokens>, p);
  if (err != cudaSuccess) return cuda_status(err, "gemv_batch");
  return cuda_status(cudaGetLastError(), "gemv_batch");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool gemv_fast_supported(quant::Type t, int64_t n_in) {
  switch (t) {
    case Type::F16: case Type::BF16: return n_in % 8 == 0;
    case Type::Q4_K: case Type::Q8_0: return n_in % 256 == 0;  // Q8_0: whole 16-byte chunks of 8 blocks
    case Type::Q6_K: return n_in % 2048 == 0;                   // rows of whole 16-byte chunks of 8 blocks
    default: return false;
  }
}

bool gemv_fast_uses_q8(quant::Type t) { return t == Type::Q4_K || t == Type::Q6_K || t == Type::Q8_0; }

Status quantize_q8(const QuantizeQ8Params& p, cudaStream_t stream) {
  if (p.n_in % 32 != 0 || p.n_tokens < 0)
    return make_error(ErrorKind::invalid_argument, "quantize_q8: row length {} is not a multiple of 32", p.n_in);
  const int64_t threads = p.n_in * p.n_tokens;
  if (threads == 0) return {};
  constexpr int kThreads = 256;
  const int64_t blocks = (threads + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return make_error(ErrorKind::invalid_argument, "quantize_q8: too large");
  quantize_q8_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "quantize_q8");
}

Status gemv_batch(const GemvBatchParams& p, cudaStream_t stream) {
  if (!gemv_fast_supported(p.w_type, p.n_in))
    return make_error(ErrorKind::unsupported, "gemv_batch: {} rows of {} are not supported", quant::type_name(p.w_type),
                      p.n_in);
  const auto rb = quant::row_bytes(p.w_type, p.n_in);
  if (!rb || *rb != p.w_row_bytes)
    return make_error(ErrorKind::invalid_argument, "gemv_batch: row bytes {} do not match {} x {}", p.w_row_bytes,
                      p.n_in, quant::type_name(p.w_type));
  if (p.n_tokens < 1 || p.n_tokens > kGemvFastMaxTokens || p.n_mats < 1 || p.n_mats > kGemvMaxMats)
    return make_error(ErrorKind::invalid_argument, "gemv_batch: {} tokens, {} matrices", p.n_tokens, p.n_mats);
  const bool q8 = gemv_fast_uses_q8(p.w_type);
  if (q8 ? (p.xq == nullptr || p.xd == nullptr || !aligned16(p.xq)) : (p.x == nullptr || !aligned16(p.x)))
    return make_error(ErrorKind::invalid_argument, "gemv_batch: missing or misaligned activations");
  const bool gated = p.epilogue == GemvEpilogue::gated;
  if (gated && (p.n_mats != 2 || p.mats[0].n_out != p.mats[1].n_out))
    return make_error(ErrorKind::invalid_argument, "gemv_batch: the gated epilogue needs two matrices of equal rows");
  int64_t rows = 0;
  for (int i = 0; i < p.n_mats; ++i) {
    if (p.mats[i].w == nullptr || p.mats[i].y == nullptr || !aligned16(p.mats[i].w) || p.mats[i].n_out < 0)
      return make_error(ErrorKind::invalid_argument, "gemv_batch: matrix {} is missing or misaligned", i);
    rows += p.mats[i].n_out;
  }
  if (gated) rows = p.mats[0].n_out;
  if (rows == 0) return {};
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  if (blocks > INT32_MAX) return make_error(ErrorKind::invalid_argument, "gemv_batch: too many rows");
  switch (p.w_type) {
    case Type::F16: return launch<Type::F16>(p, unsigned(blocks), stream);
    case Type::BF16: return launch<Type::BF16>(p, unsigned(blocks), stream);
    case Type::Q4_K: return launch<Type::Q4_K>(p, unsigned(blocks), stream);
    case Type::Q6_K: return launch<Type::Q6_K>(p, unsigned(blocks), stream);
    case Type::Q8_0: return launch<Type::Q8_0>(p, unsigned(blocks), stream);
    default: return make_error(ErrorKind::unsupported, "gemv_batch: no kernel for {}", quant::type_name(p.w_type));
  }
}

}  // namespace ember::cuda
