#include "kernels/cuda/gemv_fp4.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv_fp4_q8.cuh"
#include "kernels/cuda/matmul.h"

namespace ember::cuda {
namespace {

static_assert(fp4_q8::kQ8MaxMats == kGemvFp4MaxMats);

constexpr int kWarps = 4;         // warps per block of the weight GEMV
constexpr int kRows = 4;          // output rows per warp (sharing the x loads)
constexpr int kChunkBlocks = 64;   // FP4 blocks per row a warp stages per step (2 per lane)
constexpr int kLrThreads = 256;   // threads per rank row of the t = x'·Aᵀ launch

template <bool kMx>
struct Fp4Format {
  static constexpr int kVals = kMx ? 32 : 16;   // values per block
  static constexpr int kBytes = kMx ? 17 : 9;   // bytes per block
  static constexpr int kChunkBytes = kChunkBlocks * kBytes;  // a multiple of 16
  static constexpr int kLoads = (kChunkBytes / 16 + 31) / 32;  // 16-byte loads per lane
  static constexpr int kWords = (kBytes + 3) / 4;  // aligned words covering a block (3 / 5)
};

__device__ __forceinline__ float e4m3_value(uint8_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(b), __NV_E4M3);
  return __half2float(__half(h));
}

// E2M1 code -> its value / 2^14, through the f16 bit pattern (sign to bit 15, exponent and
// mantissa to bits 9..11; the subnormal code 1 lands on an f16 subnormal).
__device__ __forceinline__ float e2m1_scaled(uint32_t c) {
  return __half2float(__ushort_as_half(uint16_t(((c & 8) << 12) | ((c & 7) << 9))));
}

__device__ __forceinline__ float e8m0_value(uint8_t e) {
  return e == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(uint32_t(e) << 23);
}

__device__ __forceinline__ float factor(const void* p, bool bf16, int64_t i) {
  return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]) : static_cast<const float*>(p)[i];
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ uint4 ld_stream(const uint8_t* p) {
  return __ldcs(reinterpret_cast<const uint4*>(p));
}

struct Fp4Args {
  const uint8_t* w;
  int64_t n_out, n_in, row_bytes;
  float scale;
  const float* pqs;
  const float* bias;
  int rank;
  bool b_bf16;
  const void* b;
  const float* t;  // [n_tokens][rank]
  const float* x;
  int n_tokens;
  float* y;
};

// One warp per kRows output rows (the x loads are shared between them); kMaxT bounds the
// tokens (registers), a.n_tokens <= kMaxT.
template <bool kMx, int kMaxT>
__global__ void __launch_bounds__(kWarps * 32) gemv_fp4_kernel(Fp4Args a) {
  using F = Fp4Format<kMx>;
  __shared__ __align__(16) uint8_t stage[kWarps][kRows][F::kChunkBytes + 16];  // + slack for word reads
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarps + warp) * kRows;
  if (row0 >= a.n_out) return;
  const int n_rows = a.n_out - row0 < kRows ? int(a.n_out - row0) : kRows;
  const bool vec = a.row_bytes % 16 == 0;
  const int64_t nb = a.n_in / F::kVals;
  float acc[kRows][kMaxT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = 0.0f;
  for (int64_t c0 = 0; c0 < nb; c0 += kChunkBlocks) {
    const int n_blocks = nb - c0 < kChunkBlocks ? int(nb - c0) : kChunkBlocks;
    const int n_bytes = n_blocks * F::kBytes;
    int done = 0;
    if (vec) {  // all rows' 16-byte loads in flight before any store
      const int n16 = n_bytes / 16;
      uint4 q[kRows][F::kLoads];
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int i = 0; i < F::kLoads; ++i)
          if (r < n_rows && lane + 32 * i < n16)
            q[r][i] = ld_stream(a.w + (row0 + r) * a.row_bytes + c0 * F::kBytes + 16 * (lane + 32 * i));
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int i = 0; i < F::kLoads; ++i)
          if (r < n_rows && lane + 32 * i < n16) reinterpret_cast<uint4*>(stage[warp][r])[lane + 32 * i] = q[r][i];
      done = n16 * 16;
    }
    for (int r = 0; r < n_rows; ++r) {
      const uint8_t* src = a.w + (row0 + r) * a.row_bytes + c0 * F::kBytes;
      for (int b = done + lane; b < n_bytes; b += 32) stage[warp][r][b] = src[b];
    }
    __syncwarp();
    for (int j = lane; j < n_blocks; j += 32) {
      const int64_t k0 = (c0 + j) * F::kVals;
      float wv[kRows][F::kVals];
      const int o = j * F::kBytes;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        // the block's bytes as aligned words: 32-bit shared loads + funnel shifts
        const uint32_t* wp = reinterpret_cast<const uint32_t*>(stage[warp][r] + (o & ~3));
        uint32_t w[F::kWords + 1], b[F::kWords];
#pragma unroll
        for (int m = 0; m <= F::kWords; ++m) w[m] = wp[m];
#pragma unroll
        for (int m = 0; m < F::kWords; ++m) b[m] = __funnelshift_r(w[m], w[m + 1], (o & 3) * 8);
        const uint8_t s0 = uint8_t(b[0] & 0xff);
        const float d = (kMx ? e8m0_value(s0) : e4m3_value(s0)) * 16384.0f;  // e2m1_scaled is value / 2^14
#pragma unroll
        for (int i = 0; i < F::kVals / 2; ++i) {
          const uint32_t q = (b[(i + 1) >> 2] >> (((i + 1) & 3) * 8)) & 0xff;
          if (kMx) {  // GGUF pairing: element i and i + 16
            wv[r][i] = e2m1_scaled(q & 15) * d;
            wv[r][i + 16] = e2m1_scaled(q >> 4) * d;
          } else {  // HF pairing: elements 2i and 2i + 1
            wv[r][2 * i] = e2m1_scaled(q & 15) * d;
            wv[r][2 * i + 1] = e2m1_scaled(q >> 4) * d;
          }
        }
      }
      if (a.pqs != nullptr) {
#pragma unroll
        for (int i = 0; i < F::kVals; i += 4) {
          const float4 s = *reinterpret_cast<const float4*>(a.pqs + k0 + i);
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            wv[r][i] *= s.x, wv[r][i + 1] *= s.y, wv[r][i + 2] *= s.z, wv[r][i + 3] *= s.w;
        }
      }
#pragma unroll
      for (int t = 0; t < kMaxT; ++t) {
        if (t >= a.n_tokens) break;
        const float* xr = a.x + t * a.n_in + k0;
#pragma unroll
        for (int i = 0; i < F::kVals; i += 4) {
          const float4 v = *reinterpret_cast<const float4*>(xr + i);
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            acc[r][t] += wv[r][i] * v.x + wv[r][i + 1] * v.y + wv[r][i + 2] * v.z + wv[r][i + 3] * v.w;
        }
      }
    }
    __syncwarp();
  }
  // epilogue: · scale, + Σ_r t[r] · B[row][r], + bias
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r >= n_rows) break;
    const int64_t row = row0 + r;
    float low[kMaxT];
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) low[t] = 0.0f;
    for (int k = lane; k < a.rank; k += 32) {
      const float bv = factor(a.b, a.b_bf16, row * a.rank + k);
#pragma unroll
      for (int t = 0; t < kMaxT; ++t)
        if (t < a.n_tokens) low[t] += a.t[t * a.rank + k] * bv;
    }
    const float bias = a.bias != nullptr ? a.bias[row] : 0.0f;
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) {
      if (t >= a.n_tokens) break;
      const float v = warp_sum(acc[r][t] * a.scale + low[t]);
      if (lane == 0) a.y[t * a.n_out + row] = v + bias;
    }
  }
}

struct LrMat {  // one Linear's low-rank A and its t
  const void* a;
  bool bf16;
  int rank;
  float* t;
};
struct LrArgs {
  LrMat mats[kGemvFp4MaxMats];
  int n_mats;
  const float* pqs;
  const float* x;
  int64_t n_in;
  int n_tokens;
};

// t[tok][r] = Σ_k x[tok][k] · pqs[k] · A[r][k]: one block per rank row r of each Linear
// (the Linears' rank rows one after another in the grid).
__global__ void __launch_bounds__(kLrThreads) lowrank_t_kernel(LrArgs la) {
  int r = blockIdx.x, mi = 0;
#pragma unroll
  for (int m = 0; m + 1 < kGemvFp4MaxMats; ++m)
    if (mi == m && m + 1 < la.n_mats && r >= la.mats[m].rank) r -= la.mats[m].rank, mi = m + 1;
  const LrMat M = mi == 0 ? la.mats[0] : mi == 1 ? la.mats[1] : la.mats[2];
  const void* A = M.a;
  const bool a_bf16 = M.bf16;
  const int rank = M.rank;
  float* t_out = M.t;
  const float* pqs = la.pqs;
  const float* x = la.x;
  const int64_t n_in = la.n_in;
  const int n_tokens = la.n_tokens;
  float s[kGemvFp4MaxTokens];
#pragma unroll
  for (int t = 0; t < kGemvFp4MaxTokens; ++t) s[t] = 0.0f;
  const bool vec = a_bf16 && n_in % 8 == 0;  // 16-byte loads of 8 bf16 (rows 16-byte aligned)
  const int64_t n_main = vec ? n_in : 0;
  for (int64_t k = int64_t(threadIdx.x) * 8; k < n_main; k += kLrThreads * 8) {
    const uint4 q = *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(A) + int64_t(r) * n_in + k);
    float av[8];
    const uint32_t u[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) av[2 * i] = __uint_as_float(u[i] << 16), av[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    if (pqs != nullptr)
#pragma unroll
      for (int i = 0; i < 8; ++i) av[i] *= pqs[k + i];
#pragma unroll
    for (int t = 0; t < kGemvFp4MaxTokens; ++t) {
      if (t >= n_tokens) break;
      const float4 x0 = *reinterpret_cast<const float4*>(x + t * n_in + k);
      const float4 x1 = *reinterpret_cast<const float4*>(x + t * n_in + k + 4);
      s[t] += av[0] * x0.x + av[1] * x0.y + av[2] * x0.z + av[3] * x0.w + av[4] * x1.x + av[5] * x1.y +
              av[6] * x1.z + av[7] * x1.w;
    }
  }
  for (int64_t k = n_main + threadIdx.x; k < n_in; k += kLrThreads) {
    float av = factor(A, a_bf16, int64_t(r) * n_in + k);
    if (pqs != nullptr) av *= pqs[k];
#pragma unroll
    for (int t = 0; t < kGemvFp4MaxTokens; ++t)
      if (t < n_tokens) s[t] += av * x[t * n_in + k];
  }
  __shared__ float part[kGemvFp4MaxTokens][kLrThreads / 32];
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
#pragma unroll
  for (int t = 0; t < kGemvFp4MaxTokens; ++t) {
    const float v = warp_sum(s[t]);
    if (lane == 0) part[t][warp] = v;
  }
  __syncthreads();
  if (threadIdx.x < unsigned(n_tokens)) {
    float v = 0.0f;
    for (int w = 0; w < kLrThreads / 32; ++w) v += part[threadIdx.x][w];
    t_out[threadIdx.x * rank + r] = v;
  }
}

template <bool kMx>
Status launch(const Fp4Args& a, cudaStream_t stream) {
  const dim3 grid(unsigned((a.n_out + kWarps * kRows - 1) / (kWarps * kRows))), block(kWarps * 32);
  if (a.n_tokens == 1) gemv_fp4_kernel<kMx, 1><<<grid, block, 0, stream>>>(a);
  else if (a.n_tokens <= 2) gemv_fp4_kernel<kMx, 2><<<grid, block, 0, stream>>>(a);
  else if (a.n_tokens <= 4) gemv_fp4_kernel<kMx, 4><<<grid, block, 0, stream>>>(a);
  else gemv_fp4_kernel<kMx, 8><<<grid, block, 0, stream>>>(a);
  return cuda_status(cudaGetLastError(), "gemv_fp4");
}

// xs = x ⊙ pqs over [n][n_in].
__global__ void scale_columns_kernel(const float* x, const float* pqs, int64_t n_in, int64_t total, float* xs) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) xs[i] = x[i] * pqs[i % n_in];
}

// y = y · scale + t · Bᵀ + bias over [n][n_out]; one thread per output.
__global__ void fp4_epilogue_kernel(float* y, float scale, const float* t, const void* b, bool b_bf16, int rank,
                                    const float* bias, int64_t n_out, int64_t total) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t tok = i / n_out, row = i % n_out;
  float v = y[i] * scale;
  for (int k = 0; k < rank; ++k) v += t[tok * rank + k] * factor(b, b_bf16, row * rank + k);
  if (bias != nullptr) v += bias[row];
  y[i] = v;
}

Status linear_fp4_gemm(const LinearFp4Params& p, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const float* x = p.x;
  if (p.pre_quant_scale != nullptr) {
    if (p.xs == nullptr) return make_error(ErrorKind::invalid_argument, "linear_fp4: pre_quant_scale needs xs");
    const int64_t total = p.n_tokens * p.n_in;
    scale_columns_kernel<<<unsigned((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        p.x, p.pre_quant_scale, p.n_in, total, p.xs);
    EMBER_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "scale_columns"));
    x = p.xs;
  }
  EMBER_RETURN_IF_ERROR(matmul({p.w_type, p.w, p.n_out, p.n_in, p.w_row_bytes, x, p.n_tokens, p.y, p.cublas, p.w_f16,
                                p.x_f16}, stream));
  if (p.rank > 0) {
    if (p.t_rows == nullptr) return make_error(ErrorKind::invalid_argument, "linear_fp4: low-rank needs t_rows");
    const int64_t esz = p.a_type == quant::Type::BF16 ? 2 : 4;
    EMBER_RETURN_IF_ERROR(matmul({p.a_type, p.lowrank_a, p.rank, p.n_in, p.n_in * esz, x, p.n_tokens, p.t_rows,
                                  p.cublas, p.w_f16, p.x_f16}, stream));
  }
  const int64_t total = p.n_tokens * p.n_out;
  fp4_epilogue_kernel<<<unsigned((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      p.y, p.scale, p.t_rows, p.lowrank_b, p.b_type == quant::Type::BF16, p.rank, p.bias, p.n_out, total);
  return cuda_status(cudaGetLastError(), "fp4_epilogue");
}

// NVFP4, <= kGemvFp4MaxTokens tokens, 16-bit integer activations (gemv_fp4_q8.cuh):
// ps[0..n) read x (tokens t0..t0 + nt) with ps[0]'s pqs and workspace; y rows from t0.
Status launch_q8(const LinearFp4Params* ps, int n, const float* x, int nt, bool ready, int64_t t0,
                 cudaStream_t stream) {
  using namespace fp4_q8;
  const LinearFp4Params& p = ps[0];
  if (!ready) {
    constexpr int kThreads = 256;
    const int64_t total = int64_t(nt) * p.n_in;
    quantize_x16_kernel<<<unsigned((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        x, p.pre_quant_scale, p.n_in, total, p.xq, p.xd);
    EMBER_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "quantize_x16"));
  }
  Q8Args a{};
  int64_t groups = 0;
  for (int i = 0; i < n; ++i) {
    const LinearFp4Params& m = ps[i];
    a.mats[i] = {static_cast<const uint8_t*>(m.w), m.n_out, groups, m.scale * 0.5f, m.bias, m.rank,
                 m.b_type == quant::Type::BF16, m.lowrank_b, m.t, m.y + t0 * m.n_out};
    groups += (m.n_out + kQ8Rows - 1) / kQ8Rows;
  }
  a.n_mats = n;
  a.n_in = p.n_in;
  a.row_bytes = p.w_row_bytes;
  a.xq = p.xq;
  a.xd = p.xd;
  a.n_tokens = nt;
  const dim3 grid{unsigned(groups)}, block{unsigned(kQ8Warps * 32)};
  if (nt == 1) gemv_nvfp4_q8_kernel<1><<<grid, block, 0, stream>>>(a);
  else if (nt <= 2) gemv_nvfp4_q8_kernel<2><<<grid, block, 0, stream>>>(a);
  else if (nt <= 4) gemv_nvfp4_q8_kernel<4><<<grid, block, 0, stream>>>(a);
  else gemv_nvfp4_q8_kernel<8><<<grid, block, 0, stream>>>(a);
  return cuda_status(cudaGetLastError(), "gemv_nvfp4_q8");
}

bool factor_type_ok(quant::Type t) { return t == quant::Type::F32 || t == quant::Type::BF16; }

}  // namespace

bool linear_fp4_supported(quant::Type t, int64_t n_in) {
  if (t == quant::Type::NVFP4) return n_in > 0 && n_in % 16 == 0;
  if (t == quant::Type::MXFP4) return n_in > 0 && n_in % 32 == 0;
  return false;
}

namespace {

Status check_params(const LinearFp4Params& p) {
  const bool mx = p.w_type == quant::Type::MXFP4;
  if (!linear_fp4_supported(p.w_type, p.n_in))
    return make_error(ErrorKind::invalid_argument, "linear_fp4: unsupported weight type {} or row length {}",
                      quant::type_name(p.w_type), p.n_in);
  const int64_t vals = mx ? 32 : 16, bytes = mx ? 17 : 9;
  if (p.w_row_bytes != p.n_in / vals * bytes || p.n_out <= 0 || p.n_tokens <= 0 || p.w == nullptr ||
      p.x == nullptr || p.y == nullptr || reinterpret_cast<uintptr_t>(p.w) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(p.x) % 16 != 0 || (p.pre_quant_scale != nullptr &&
                                                     reinterpret_cast<uintptr_t>(p.pre_quant_scale) % 16 != 0))
    return make_error(ErrorKind::invalid_argument, "linear_fp4: bad shape or pointers ({} x {}, row bytes {})",
                      p.n_out, p.n_in, p.w_row_bytes);
  if (p.rank < 0 || (p.rank > 0 && (p.lowrank_a == nullptr || p.lowrank_b == nullptr || p.t == nullptr ||
                                    !factor_type_ok(p.a_type) || !factor_type_ok(p.b_type))))
    return make_error(ErrorKind::invalid_argument, "linear_fp4: bad low-rank branch (rank {})", p.rank);
  if (p.xq != nullptr && reinterpret_cast<uintptr_t>(p.xq) % 16 != 0)
    return make_error(ErrorKind::invalid_argument, "linear_fp4: xq must be 16-byte aligned");
  return {};
}

// t = x'·Aᵀ of the low-rank Linears among ps[0..n) (same x and pqs), one launch.
Status lowrank_t(const LinearFp4Params* ps, int n, const float* x, int nt, cudaStream_t stream) {
  LrArgs la{};
  int rows = 0;
  for (int i = 0; i < n; ++i)
    if (ps[i].rank > 0) {
      la.mats[la.n_mats++] = {ps[i].lowrank_a, ps[i].a_type == quant::Type::BF16, ps[i].rank, ps[i].t};
      rows += ps[i].rank;
    }
  if (rows == 0) return {};
  la.pqs = ps[0].pre_quant_scale;
  la.x = x;
  la.n_in = ps[0].n_in;
  la.n_tokens = nt;
  lowrank_t_kernel<<<unsigned(rows), kLrThreads, 0, stream>>>(la);
  return cuda_status(cudaGetLastError(), "lowrank_t");
}

}  // namespace

Status linear_fp4(const LinearFp4Params& p, cudaStream_t stream) {
  EMBER_RETURN_IF_ERROR(check_params(p));
  const bool mx = p.w_type == quant::Type::MXFP4;
  if (p.n_tokens > kGemvFp4MaxTokens && p.cublas != nullptr && p.w_f16 != nullptr && p.x_f16 != nullptr)
    return linear_fp4_gemm(p, stream);
  const bool q8 = !mx && p.xq != nullptr && p.xd != nullptr;
  for (int64_t t0 = 0; t0 < p.n_tokens; t0 += kGemvFp4MaxTokens) {
    const int nt = int(std::min<int64_t>(kGemvFp4MaxTokens, p.n_tokens - t0));
    const float* x = p.x + t0 * p.n_in;
    if (p.rank > 0) EMBER_RETURN_IF_ERROR(lowrank_t(&p, 1, x, nt, stream));
    if (q8) {
      const bool ready = p.xq_ready && p.n_tokens <= kGemvFp4MaxTokens;
      EMBER_RETURN_IF_ERROR(launch_q8(&p, 1, x, nt, ready, t0, stream));
      continue;
    }
    const Fp4Args a{static_cast<const uint8_t*>(p.w), p.n_out, p.n_in, p.w_row_bytes, p.scale, p.pre_quant_scale,
                    p.bias, p.rank, p.b_type == quant::Type::BF16, p.lowrank_b, p.t, x, nt, p.y + t0 * p.n_out};
    EMBER_RETURN_IF_ERROR(mx ? launch<true>(a, stream) : launch<false>(a, stream));
  }
  return {};
}

Status linear_fp4_group(const LinearFp4Params* ps, int n, cudaStream_t stream) {
  if (ps == nullptr || n < 1 || n > kGemvFp4MaxMats)
    return make_error(ErrorKind::invalid_argument, "linear_fp4_group: {} Linears (1..{})", n, kGemvFp4MaxMats);
  const LinearFp4Params& p = ps[0];
  for (int i = 0; i < n; ++i) {
    const LinearFp4Params& m = ps[i];
    EMBER_RETURN_IF_ERROR(check_params(m));
    if (m.w_type != quant::Type::NVFP4 || m.n_in != p.n_in || m.x != p.x || m.n_tokens != p.n_tokens ||
        m.n_tokens > kGemvFp4MaxTokens || m.pre_quant_scale != p.pre_quant_scale || p.xq == nullptr ||
        p.xd == nullptr)
      return make_error(ErrorKind::invalid_argument,
                        "linear_fp4_group: Linear {} is not NVFP4 on the same x, pqs and <= {} tokens, or no xq/xd",
                        i, kGemvFp4MaxTokens);
    for (int j = 0; j < i; ++j)
      if (m.rank > 0 && ps[j].rank > 0 && m.t == ps[j].t)
        return make_error(ErrorKind::invalid_argument, "linear_fp4_group: low-rank Linears need their own t");
  }
  EMBER_RETURN_IF_ERROR(lowrank_t(ps, n, p.x, int(p.n_tokens), stream));
  return launch_q8(ps, n, p.x, int(p.n_tokens), p.xq_ready, 0, stream);
}

}  // namespace ember::cuda
