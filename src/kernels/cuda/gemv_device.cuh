// Device helpers of the decode GEMV (gemv.cu), shared with the expert GEMV (moe.cu): the
// per-format row dot products of one warp. Included by .cu files only; everything here is
// internal to each including translation unit.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/gemv.h"
#include "kernels/cuda/pdl.cuh"

namespace ember::cuda {

namespace {

using quant::Type;

__device__ __forceinline__ uint4 ld16(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ int4 ld16i(const int8_t* p) { return __ldg(reinterpret_cast<const int4*>(p)); }

__device__ __forceinline__ uint32_t word(const uint4& q, int i) {
  return i == 0 ? q.x : i == 1 ? q.y : i == 2 ? q.z : q.w;
}
__device__ __forceinline__ int iword(const int4& q, int i) { return i == 0 ? q.x : i == 1 ? q.y : i == 2 ? q.z : q.w; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float gated(float g, float u, GatedAct act) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float a = act == GatedAct::silu ? g / (1.0f + expf(-g))
                                        : 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
  return a * u;
}

// Σ of 16 int8 products (4 dp4a) and, optionally, the sum of the 16 activations.
__device__ __forceinline__ int dot16(const uint32_t (&w)[4], const int4& x) {
  int s = 0;
#pragma unroll
  for (int k = 0; k < 4; ++k) s = __dp4a(int(w[k]), iword(x, k), s);
  return s;
}
__device__ __forceinline__ int sum16(const int4& x) {
  int s = 0;
#pragma unroll
  for (int k = 0; k < 4; ++k) s = __dp4a(0x01010101, iword(x, k), s);
  return s;
}

// ---- Q4_K, read in place: unit u = 32 elements of block u / 8; its 16 bytes of qs hold
// 16 elements of sub-block 2cc (low nibbles) and 16 of sub-block 2cc + 1 (high).

__device__ __forceinline__ uint32_t hbyte(const uint4& h, int i) { return (word(h, i >> 2) >> (8 * (i & 3))) & 0xffu; }

// 6-bit scale and min of sub-block j; h = the block's first 16 bytes (d, dmin, scales).
__device__ __forceinline__ void q4k_scale_min(const uint4& h, int j, float& s, float& m) {
  if (j < 4) {
    s = float(hbyte(h, 4 + j) & 63);
    m = float(hbyte(h, 8 + j) & 63);
  } else {
    s = float((hbyte(h, 8 + j) & 15) | ((hbyte(h, j) >> 6) << 4));
    m = float((hbyte(h, 8 + j) >> 4) | ((hbyte(h, 4 + j) >> 6) << 4));
  }
}

// One unit: hdr = the block's first 16 bytes, qs = its 16 bytes of quants for sub-block
// pair sub / 2 (half sub % 2); blk = the block's index in the row.
template <int MaxM>
__device__ __forceinline__ void q4k_unit(const uint4& hdr, const uint4& qs, int64_t blk, int sub,
                                         const GemvBatchParams& p, float (&acc)[MaxM]) {
  const int cc = sub >> 1;
  float s0, m0, s1, m1;
  q4k_scale_min(hdr, 2 * cc, s0, m0);
  q4k_scale_min(hdr, 2 * cc + 1, s1, m1);
  const float d = __half2float(__ushort_as_half(uint16_t(hdr.x & 0xffff)));
  const float dmin = __half2float(__ushort_as_half(uint16_t(hdr.x >> 16)));
  uint32_t lo[4], hi[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    lo[k] = word(qs, k) & 0x0F0F0F0Fu;
    hi[k] = (word(qs, k) >> 4) & 0x0F0F0F0Fu;
  }
  const int64_t nxb = p.n_in / 32;
  const int64_t xb = blk * 8 + 2 * cc;  // q8 block of the low nibbles
  const int64_t k0 = xb * 32 + 16 * (sub & 1);
#pragma unroll
  for (int m = 0; m < MaxM; ++m) {
    if (m < p.n_tokens) {
      const int8_t* xq = p.xq + m * p.n_in;
      const float* xd = p.xd + m * nxb;
      const int4 xl = ld16i(xq + k0), xh = ld16i(xq + k0 + 32);
      const float dl = d * s0 * float(dot16(lo, xl)) - dmin * m0 * float(sum16(xl));
      const float dh = d * s1 * float(dot16(hi, xh)) - dmin * m1 * float(sum16(xh));
      acc[m] += __ldg(xd + xb) * dl + __ldg(xd + xb + 1) * dh;
    }
  }
}

// In place from global memory (p.q4k_direct): lane reads units lane, lane + 32, ... of R
// rows at once (R = 2: the gate and up rows of the gated epilogue, all loads in flight
// together). late: wait for the previous kernel (PDL) only once the first weight loads
// are issued, so they overlap its tail.
template <int MaxM, int R>
__device__ __forceinline__ void dot_q4_k(const uint8_t* const (&rows)[R], const GemvBatchParams& p,
                                         float (&acc)[R][MaxM], int lane, bool late) {
  constexpr int U = 4 / R;
  const int64_t n_units = p.n_in / 32;
  for (int64_t u0 = lane; u0 < n_units; u0 += 32 * U) {
    uint4 hdr[R][U], qs[R][U];
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int64_t u = u0 + 32 * i;
      if (u < n_units) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint8_t* b = rows[r] + 144 * (u >> 3);
          hdr[r][i] = ld16(b);
          qs[r][i] = ld16(b + 16 + 16 * (u & 7));
        }
      }
    }
    if (late) pdl_wait();
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int64_t u = u0 + 32 * i;
      if (u >= n_units) break;
#pragma unroll
      for (int r = 0; r < R; ++r) q4k_unit(hdr[r][i], qs[r][i], u >> 3, int(u & 7), p, acc[r]);
    }
  }
}

// ---- F16 / BF16, read in place: unit = 8 elements (16 bytes), fp32 activations.

template <Type T, int MaxM>
__device__ __forceinline__ void dot_float(const uint8_t* row, const GemvBatchParams& p, float (&acc)[MaxM], int lane,
                                          bool late) {
  constexpr int U = 4;
  const int64_t n_units = p.n_in / 8;
  for (int64_t u0 = lane; u0 < n_units; u0 += 32 * U) {
    uint4 w[U];
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (u0 + 32 * i < n_units) w[i] = ld16(row + 16 * (u0 + 32 * i));
    if (late) pdl_wait();
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int64_t u = u0 + 32 * i;
      if (u >= n_units) break;
      float v[8];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint32_t x = word(w[i], k);
        if constexpr (T == Type::F16) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&x));
          v[2 * k] = f.x;
          v[2 * k + 1] = f.y;
        } else {
          v[2 * k] = __uint_as_float(x << 16);
          v[2 * k + 1] = __uint_as_float(x & 0xffff0000u);
        }
      }
#pragma unroll
      for (int m = 0; m < MaxM; ++m) {
        if (m < p.n_tokens) {
          const float4* x = reinterpret_cast<const float4*>(p.x + m * p.n_in + 8 * u);
          const float4 a = __ldg(x), b = __ldg(x + 1);
          acc[m] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y + v[6] * b.z +
                    v[7] * b.w;
        }
      }
    }
  }
}

// ---- Staged formats: the warp copies chunks of whole blocks to shared memory.

template <Type T>
struct Staged;
template <>
struct Staged<Type::Q8_0> {
  static constexpr int kBlockBytes = 34, kBlockElems = 32, kChunkBlocks = 32;  // 1088 bytes
};
template <>
struct Staged<Type::Q6_K> {
  static constexpr int kBlockBytes = 210, kBlockElems = 256, kChunkBlocks = 8;  // 1680 bytes
};
template <>
struct Staged<Type::Q4_K> {
  static constexpr int kBlockBytes = 144, kBlockElems = 256, kChunkBlocks = 8;  // 1152 bytes, 2 units a lane
};
template <Type T>
constexpr int kStagedVecs = Staged<T>::kChunkBlocks * Staged<T>::kBlockBytes / 16;

// 16 bytes at smem byte offset `off` (2-byte aligned): sh = 8 * (off & 3).
__device__ __forceinline__ void smem16(const uint8_t* base, int off, int sh, uint32_t (&q)[4]) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(base + (off & ~3));
  uint32_t t[5];
#pragma unroll
  for (int k = 0; k < 5; ++k) t[k] = w[k];
#pragma unroll
  for (int k = 0; k < 4; ++k) q[k] = __funnelshift_rc(t[k], t[k + 1], sh);
}

// Block `lane` of the chunk (chunk starts at block c).
template <int MaxM>
__device__ __forceinline__ void decode_q8_0(const uint8_t* base, int64_t c, int nblk, const GemvBatchParams& p,
                                            float (&acc)[MaxM], int lane) {
  if (lane >= nblk) return;
  const int off = 34 * lane, sh = 8 * (off & 3);
  const uint32_t* w32 = reinterpret_cast<const uint32_t*>(base + (off & ~3));
  uint32_t w[9];
#pragma unroll
  for (int k = 0; k < 9; ++k) w[k] = w32[k];
  const float d = __half2float(__ushort_as_half(uint16_t(__funnelshift_rc(w[0], w[1], sh) & 0xffff)));
  uint32_t qa[4], qb[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    qa[k] = __funnelshift_rc(w[k], w[k + 1], sh + 16);
    qb[k] = __funnelshift_rc(w[k + 4], w[k + 5], sh + 16);
  }
  const int64_t xb = c + lane, nxb = p.n_in / 32;
#pragma unroll
  for (int m = 0; m < MaxM; ++m) {
    if (m < p.n_tokens) {
      const int8_t* xq = p.xq + m * p.n_in + xb * 32;
      const int s = dot16(qa, ld16i(xq)) + dot16(qb, ld16i(xq + 16));
      acc[m] += d * __ldg(p.xd + m * nxb + xb) * float(s);
    }
  }
}

// Four lanes per block: lane -> (block, half h, l0); covers elements 128h + 32j + l0 + [0, 16).
template <int MaxM>
__device__ __forceinline__ void decode_q6_k(const uint8_t* base, int64_t c, int nblk, const GemvBatchParams& p,
                                            float (&acc)[MaxM], int lane) {
  const int blk = lane >> 2;
  if (blk >= nblk) return;
  const int h = (lane >> 1) & 1, l0 = 16 * (lane & 1);
  const int b = 210 * blk, sh = 8 * (b & 3);
  uint32_t qa[4], qb[4], qh[4];
  smem16(base, b + 64 * h + l0, sh, qa);
  smem16(base, b + 64 * h + 32 + l0, sh, qb);
  smem16(base, b + 128 + 32 * h + l0, sh, qh);
  const uint32_t* sw = reinterpret_cast<const uint32_t*>(base + ((b + 192 + 8 * h) & ~3));
  const uint32_t t0 = sw[0], t1 = sw[1], t2 = sw[2];
  const uint32_t sc_lo = __funnelshift_rc(t0, t1, sh), sc_hi = __funnelshift_rc(t1, t2, sh);
  const float d = __half2float(*reinterpret_cast<const __half*>(base + b + 208));
  const int64_t nxb = p.n_in / 32;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t(&ql)[4] = (j & 1) ? qb : qa;
    uint32_t v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      v[k] = __vsub4(((ql[k] >> (4 * (j >> 1))) & 0x0F0F0F0Fu) | (((qh[k] >> (2 * j)) & 0x03030303u) << 4),
                     0x20202020u);
    const int si = (l0 >> 4) + 2 * j;  // scale index inside the half's 8 scales
    const float sc = float(int8_t(((si < 4 ? sc_lo : sc_hi) >> (8 * (si & 3))) & 0xff));
    const int64_t xb = (c + blk) * 8 + 4 * h + j;
#pragma unroll
    for (int m = 0; m < MaxM; ++m) {
      if (m < p.n_tokens) {
        const int s = dot16(v, ld16i(p.xq + m * p.n_in + xb * 32 + l0));
        acc[m] += d * sc * __ldg(p.xd + m * nxb + xb) * float(s);
      }
    }
  }
}

template <int MaxM>
__device__ __forceinline__ void decode_q4_k(const uint8_t* base, int64_t c, int nblk, const GemvBatchParams& p,
                                            float (&acc)[MaxM], int lane) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int unit = lane + 32 * i, blk = unit >> 3;
    if (blk >= nblk) break;
    const uint4 hdr = *reinterpret_cast<const uint4*>(base + 144 * blk);
    const uint4 qs = *reinterpret_cast<const uint4*>(base + 144 * blk + 16 + 16 * (unit & 7));
    q4k_unit(hdr, qs, c + blk, unit & 7, p, acc);
  }
}

template <Type T, int MaxM>
__device__ __forceinline__ void dot_staged(const uint8_t* row, const GemvBatchParams& p, float (&acc)[MaxM],
                                           uint4* smem, int lane, bool late) {
  using S = Staged<T>;
  constexpr int kPerLane = (kStagedVecs<T> + 31) / 32;
  const int64_t nb = p.n_in / S::kBlockElems;
  const uint4* src = reinterpret_cast<const uint4*>(row);
  uint4 reg[kPerLane];
  // A partial last chunk rounds up to whole 16-byte vectors: the rows of the expert GEMV
  // (moe.cu) are padded to 16 bytes; whole chunks are exact multiples of 16 bytes.
  auto n_vecs = [&](int64_t c) {
    return int(((nb - c < S::kChunkBlocks ? nb - c : S::kChunkBlocks) * S::kBlockBytes + 15) / 16);
  };
  auto load = [&](int64_t c) {
    const int nv = n_vecs(c);
    const uint4* s = src + c * S::kBlockBytes / 16;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      if (lane + 32 * i < nv) reg[i] = ld16(s + lane + 32 * i);
  };
  load(0);
  if (late) pdl_wait();
  for (int64_t c = 0; c < nb; c += S::kChunkBlocks) {
    const int nv = n_vecs(c);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      if (lane + 32 * i < nv) smem[lane + 32 * i] = reg[i];
    __syncwarp();
    if (c + S::kChunkBlocks < nb) load(c + S::kChunkBlocks);
    const int nblk = int(nb - c < S::kChunkBlocks ? nb - c : S::kChunkBlocks);
    const uint8_t* base = reinterpret_cast<const uint8_t*>(smem);
    if constexpr (T == Type::Q8_0) decode_q8_0(base, c, nblk, p, acc, lane);
    else if constexpr (T == Type::Q4_K) decode_q4_k(base, c, nblk, p, acc, lane);
    else decode_q6_k(base, c, nblk, p, acc, lane);
    __syncwarp();
  }
}

template <Type T>
__host__ __device__ constexpr int smem_vecs() {
  if constexpr (T == Type::Q8_0 || T == Type::Q6_K || T == Type::Q4_K) return kStagedVecs<T> + 1;
  else return 1;
}

template <Type T, int MaxM>
__device__ __forceinline__ void row_dot(const uint8_t* row, const GemvBatchParams& p, float (&acc)[MaxM], uint4* smem,
                                        int lane, bool late) {
#pragma unroll
  for (int m = 0; m < MaxM; ++m) acc[m] = 0.0f;
  if constexpr (T == Type::Q4_K) {
    if (p.q4k_direct) {
      const uint8_t* const rows[1] = {row};
      dot_q4_k<MaxM, 1>(rows, p, reinterpret_cast<float(&)[1][MaxM]>(acc), lane, late);
    } else {
      dot_staged<T>(row, p, acc, smem, lane, late);
    }
  } else if constexpr (T == Type::F16 || T == Type::BF16) {
    dot_float<T>(row, p, acc, lane, late);
  } else {
    dot_staged<T>(row, p, acc, smem, lane, late);
  }
  if (late) pdl_wait();  // a lane with no units of the row still waits before the write
#pragma unroll
  for (int m = 0; m < MaxM; ++m) acc[m] = warp_sum(acc[m]);
}

// Asks L2 for a weight row (128-byte lines) before the kernel may read its inputs.
__device__ __forceinline__ void prefetch_row(const uint8_t* row, int64_t bytes, int lane) {
  for (int64_t off = int64_t(lane) * 128; off < bytes; off += 32 * 128)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(row + off));
}

}  // namespace

}  // namespace ember::cuda
