// NVFP4 decode GEMV on 16-bit integer activations split into two int8 planes (dp4a), used
// by linear_fp4 / linear_fp4_group (gemv_fp4.cu) when the caller gives an xq/xd workspace.
// One launch covers up to kQ8MaxMats Linears reading the same x. Included by gemv_fp4.cu only.
//
//   quantize_x16_kernel: x' = x ⊙ pqs quantized per 16 values: d = max|x'| / kQ16Max,
//   q = round(x' / d) (ties to even), so each NVFP4 block meets one activation scale;
//   q = 256 · hi + lo with hi = (q + 128) >> 8 and lo in [-128, 127] (both int8). Stored per
//   16-value group as 16 hi bytes then 16 lo bytes. (Plain int8 activations were tried
//   first: ~0.4% relative error per dot, which pushed the MoE NVFP4 fixtures past their
//   logit tolerance against the fp32 CPU reference; the second plane costs 4 dp4a.)
//   gemv_nvfp4_q8_kernel: a block of kQ8Warps warps covers kQ8Rows rows; the warps split
//   the row (chunks of kQ8ChunkBlocks blocks, staged through shared memory with 16-byte
//   loads) and their sums meet in shared memory. For each 9-byte block a lane turns the 16
//   E2M1 codes into their doubled values (integers, so x'·w is exact in int32 up to the
//   scales) with byte permutes, dots them with 8 dp4a per token and adds
//   sum · e4m3(scale) · d in fp32; the epilogue multiplies by global scale / 2.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace ember::cuda::fp4_q8 {

constexpr int kQ8Warps = 4;           // warps per block, splitting each row
constexpr int kQ8Rows = 4;            // rows per block (one epilogue warp each)
constexpr int kQ8ChunkBlocks = 64;    // NVFP4 blocks per row a warp stages per step (2 per lane)
constexpr int kQ8ChunkBytes = kQ8ChunkBlocks * 9;  // 576, a multiple of 16
constexpr int kQ8Loads = (kQ8ChunkBytes / 16 + 31) / 32;  // 16-byte loads per lane per row (2)

// Doubled E2M1 magnitudes for codes 0..7 as bytes {0,1,2,3 | 4,6,8,12}, and their negations
// for codes 8..15 (sign bit 3).
constexpr uint32_t kPosLo = 0x03020100u, kPosHi = 0x0C080604u;
constexpr uint32_t kNegLo = 0xFDFEFF00u, kNegHi = 0xF4F8FAFCu;
constexpr int kQ16Max = 127 * 256 + 127;  // 32639: largest |q| whose hi and lo fit int8

// 8 codes (nibble i = element i) -> two words of 4 signed doubled values, elements 0..3 and 4..7.
__device__ __forceinline__ void e2m1x8_doubled(uint32_t q, uint32_t& lo, uint32_t& hi) {
  const uint32_t idx = q & 0x77777777u;                       // magnitude index per nibble
  const uint32_t sel = ((q >> 1) & 0x44444444u) | 0x32103210u;  // byte i, or byte 4 + i when negative
  const uint32_t idx_hi = idx >> 16, sel_hi = sel >> 16;
  lo = __byte_perm(__byte_perm(kPosLo, kPosHi, idx), __byte_perm(kNegLo, kNegHi, idx), sel);
  hi = __byte_perm(__byte_perm(kPosLo, kPosHi, idx_hi), __byte_perm(kNegLo, kNegHi, idx_hi), sel_hi);
}

__device__ __forceinline__ float e4m3_to_f32(uint32_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(b), __NV_E4M3);
  return __half2float(__half(h));
}

__device__ __forceinline__ float warp_sum32(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One thread per value; the 16 values of a group are 16 consecutive lanes.
__global__ void quantize_x16_kernel(const float* x, const float* pqs, int64_t n_in, int64_t total, int8_t* q,
                                    float* d) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i - int64_t(threadIdx.x % 32) >= total) return;  // whole warps leave (total % 16 == 0)
  const bool in = i < total;
  const float v = in ? (pqs != nullptr ? x[i] * pqs[i % n_in] : x[i]) : 0.0f;
  float amax = fabsf(v);
  for (int o = 8; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float dv = amax / float(kQ16Max);
  if (!in) return;
  const int qv = __float2int_rn(dv > 0.0f ? v / dv : 0.0f);
  const int hi = (qv + 128) >> 8;
  const int64_t at = i / 16 * 32 + i % 16;
  q[at] = int8_t(hi);
  q[at + 16] = int8_t(qv - 256 * hi);
  if (i % 16 == 0) d[i / 16] = dv;
}

constexpr int kQ8MaxMats = 3;

struct Q8Mat {  // one Linear of a launch
  const uint8_t* w;
  int64_t n_out;
  int64_t group0;  // its first row group (of kQ8Rows rows) in the launch's grid
  float scale;     // global scale / 2 (the decoded codes are doubled)
  const float* bias;
  int rank;
  bool b_bf16;
  const void* b;
  const float* t;  // [n_tokens][rank]
  float* y;
};

struct Q8Args {
  Q8Mat mats[kQ8MaxMats];
  int n_mats;
  int64_t n_in, row_bytes;
  const int8_t* xq;  // [n_tokens][n_in / 16][hi 16 | lo 16]
  const float* xd;
  int n_tokens;
};

template <int kMaxT>
__global__ void __launch_bounds__(kQ8Warps * 32) gemv_nvfp4_q8_kernel(Q8Args a) {
  __shared__ __align__(16) uint8_t stage[kQ8Warps][kQ8Rows][kQ8ChunkBytes + 16];  // + slack for word reads
  __shared__ float part[kQ8Warps][kQ8Rows][kMaxT];
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  int mi = 0;  // the Linear this block's rows belong to
#pragma unroll
  for (int m = 1; m < kQ8MaxMats; ++m)
    if (m < a.n_mats && int64_t(blockIdx.x) >= a.mats[m].group0) mi = m;
  const Q8Mat M = mi == 0 ? a.mats[0] : mi == 1 ? a.mats[1] : a.mats[2];
  const int64_t row0 = (int64_t(blockIdx.x) - M.group0) * kQ8Rows;
  const int n_rows = M.n_out - row0 < kQ8Rows ? int(M.n_out - row0) : kQ8Rows;
  const bool vec = a.row_bytes % 16 == 0;
  const int64_t nb = a.n_in / 16;
  float acc[kQ8Rows][kMaxT];
#pragma unroll
  for (int r = 0; r < kQ8Rows; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = 0.0f;
  for (int64_t c0 = int64_t(warp) * kQ8ChunkBlocks; c0 < nb; c0 += kQ8Warps * kQ8ChunkBlocks) {
    const int n_blocks = nb - c0 < kQ8ChunkBlocks ? int(nb - c0) : kQ8ChunkBlocks;
    const int n_bytes = n_blocks * 9;
    int done = 0;
    if (vec) {  // all rows' 16-byte loads in flight before any store
      const int n16 = n_bytes / 16;
      uint4 q[kQ8Rows][kQ8Loads];
#pragma unroll
      for (int r = 0; r < kQ8Rows; ++r)
#pragma unroll
        for (int i = 0; i < kQ8Loads; ++i)
          if (r < n_rows && lane + 32 * i < n16)
            q[r][i] = __ldcs(reinterpret_cast<const uint4*>(M.w + (row0 + r) * a.row_bytes + c0 * 9) + lane + 32 * i);
#pragma unroll
      for (int r = 0; r < kQ8Rows; ++r)
#pragma unroll
        for (int i = 0; i < kQ8Loads; ++i)
          if (r < n_rows && lane + 32 * i < n16) reinterpret_cast<uint4*>(stage[warp][r])[lane + 32 * i] = q[r][i];
      done = n16 * 16;
    }
    for (int r = 0; r < n_rows; ++r) {
      const uint8_t* src = M.w + (row0 + r) * a.row_bytes + c0 * 9;
      for (int b = done + lane; b < n_bytes; b += 32) stage[warp][r][b] = src[b];
    }
    __syncwarp();
    for (int j = lane; j < n_blocks; j += 32) {
      const int64_t blk = c0 + j;
      uint4 xh[kMaxT], xl[kMaxT];
      float dx[kMaxT];
#pragma unroll
      for (int t = 0; t < kMaxT; ++t) {
        if (t < a.n_tokens) {
          const uint4* xp = reinterpret_cast<const uint4*>(a.xq + (t * nb + blk) * 32);
          xh[t] = xp[0];
          xl[t] = xp[1];
          dx[t] = a.xd[t * nb + blk];
        }
      }
      const int o = j * 9;
      const int oc = o + 1, sh = (oc & 3) * 8;  // the 8 code bytes as two words
#pragma unroll
      for (int r = 0; r < kQ8Rows; ++r) {
        const uint32_t* wp = reinterpret_cast<const uint32_t*>(stage[warp][r] + (oc & ~3));
        const uint32_t w0 = wp[0], w1 = wp[1], w2 = wp[2];
        const float ws = e4m3_to_f32(stage[warp][r][o]);
        uint32_t v[4];
        e2m1x8_doubled(__funnelshift_r(w0, w1, sh), v[0], v[1]);
        e2m1x8_doubled(__funnelshift_r(w1, w2, sh), v[2], v[3]);
#pragma unroll
        for (int t = 0; t < kMaxT; ++t) {
          if (t >= a.n_tokens) break;
          int s = __dp4a(int(v[0]), int(xh[t].x), 0);
          s = __dp4a(int(v[1]), int(xh[t].y), s);
          s = __dp4a(int(v[2]), int(xh[t].z), s);
          s = __dp4a(int(v[3]), int(xh[t].w), s);
          s = __dp4a(int(v[0]), int(xl[t].x), s * 256);  // |s| <= 16 · 12 · 32639 < 2^23
          s = __dp4a(int(v[1]), int(xl[t].y), s);
          s = __dp4a(int(v[2]), int(xl[t].z), s);
          s = __dp4a(int(v[3]), int(xl[t].w), s);
          acc[r][t] += float(s) * (ws * dx[t]);
        }
      }
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < kQ8Rows; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) {
      const float v = warp_sum32(acc[r][t]);
      if (lane == 0) part[warp][r][t] = v;
    }
  __syncthreads();
  // epilogue, warp r for row row0 + r: · scale, + Σ_k t[k] · B[row][k], + bias
  if (warp >= n_rows) return;
  const int64_t row = row0 + warp;
  float low[kMaxT];
#pragma unroll
  for (int t = 0; t < kMaxT; ++t) low[t] = 0.0f;
  for (int k = lane; k < M.rank; k += 32) {
    const int64_t i = row * M.rank + k;
    const float bv = M.b_bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(M.b)[i])
                              : static_cast<const float*>(M.b)[i];
#pragma unroll
    for (int t = 0; t < kMaxT; ++t)
      if (t < a.n_tokens) low[t] += M.t[t * M.rank + k] * bv;
  }
  const float bias = M.bias != nullptr ? M.bias[row] : 0.0f;
#pragma unroll
  for (int t = 0; t < kMaxT; ++t) {
    if (t >= a.n_tokens) break;
    const float lw = warp_sum32(low[t]);
    if (lane == 0) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kQ8Warps; ++w) s += part[w][warp][t];
      M.y[t * M.n_out + row] = s * M.scale + lw + bias;
    }
  }
}

}  // namespace ember::cuda::fp4_q8
