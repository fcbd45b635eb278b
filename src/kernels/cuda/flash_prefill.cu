// Flash-attention prefill on tensor cores (FlashAttention-2 layout): a block of 4 warps
// owns 64 query rows of one head (16 per warp) and walks the visible keys in tiles of
// kKeys staged in shared memory by cp.async, double-buffered. Q·Kᵀ and P·V are
// mma.sync m16n8k16 (f16 inputs, fp32 accumulation) fed by ldmatrix; the online softmax
// runs in fp32 registers. Q (f32) is rounded to f16 once; P is rounded to f16 for P·V.
// Tiles a warp cannot see (causal, window) are skipped; masks only run on edge tiles.
// CPU twin: cpu::attention. Called by attention_prefill for head_dim 64 / 128 / 256.
#include <cuda_fp16.h>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cuda_check.h"

namespace ember::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // query rows per block

template <int HD>
struct Tile {
  static constexpr int kKeys = HD == 256 ? 32 : 64;  // keys per tile
  static constexpr int kStride = HD + 8;             // halves per smem row: 16-byte pad, ldmatrix conflict-free
  static constexpr size_t kSmem = size_t(kRows + 4 * kKeys) * kStride * sizeof(__half);  // Q + 2 x (K, V)
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a · b for one m16n8k16 tile (f16 in, fp32 accumulate).
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Stages keys [kt, kt + kKeys) of one kv head (rows past n_keys zero-filled).
template <int HD>
__device__ __forceinline__ void load_kv(const AttentionParams& p, __half* k_s, __half* v_s, int64_t kt,
                                        int64_t n_keys, int kvh) {
  using T = Tile<HD>;
  constexpr int kChunks = HD / 8;  // 16-byte chunks per row
  const int64_t kv_stride = int64_t(p.n_kv_heads) * HD;
  for (int i = threadIdx.x; i < T::kKeys * kChunks; i += 32 * kWarps) {
    const int r = i / kChunks, c = i % kChunks;
    const int64_t j = kt + r;
    const bool valid = j < n_keys;
    const int64_t off = valid ? j * kv_stride + int64_t(kvh) * HD + c * 8 : 0;
    cp_async16(k_s + r * T::kStride + c * 8, p.k + off, valid);
    cp_async16(v_s + r * T::kStride + c * 8, p.v + off, valid);
  }
}

template <int HD>
__global__ void __launch_bounds__(32 * kWarps) flash_prefill_kernel(AttentionParams p) {
  using T = Tile<HD>;
  constexpr int KK = T::kKeys, S = T::kStride, NT = KK / 8, DT = HD / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  __half* q_s = reinterpret_cast<__half*>(smem);  // [kRows][S]
  __half* kv_s = q_s + kRows * S;                  // [2][K, V][KK][S]
  const int h = blockIdx.y, t0 = blockIdx.x * kRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t q_stride = int64_t(p.n_heads) * HD, n_keys = p.pos0 + p.n_tokens;
  const int rows = min(kRows, p.n_tokens - t0);
  const int64_t q_lo = p.pos0 + t0, q_hi = q_lo + rows - 1;  // block's query positions
  const int64_t k_lo = attn::first_key(q_lo, p.window);
  const int n_tiles = int((q_hi - k_lo) / KK) + 1;

  load_kv<HD>(p, kv_s, kv_s + KK * S, k_lo, n_keys, kvh);
  cp_async_commit();
  for (int i = threadIdx.x; i < kRows * (HD / 4); i += 32 * kWarps) {  // Q: f32 -> f16
    const int r = i / (HD / 4), c = (i % (HD / 4)) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < rows) v = *reinterpret_cast<const float4*>(p.q + (t0 + r) * q_stride + int64_t(h) * HD + c);
    __half2* dst = reinterpret_cast<__half2*>(q_s + r * S + c);
    dst[0] = __floats2half2_rn(v.x, v.y);
    dst[1] = __floats2half2_rn(v.z, v.w);
  }

  // This thread's rows: w0 + g and w0 + g + 8.
  const int w0 = warp * 16;
  const int64_t my_pos[2] = {q_lo + w0 + g, q_lo + w0 + g + 8};
  const int64_t warp_lo = q_lo + w0, warp_hi = q_lo + w0 + 15;  // padding rows are never written
  float o[DT][4];
#pragma unroll
  for (int d = 0; d < DT; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int it = 0; it < n_tiles; ++it) {
    const int64_t kt = k_lo + int64_t(it) * KK;
    if (it + 1 < n_tiles) {
      __half* nb = kv_s + ((it + 1) & 1) * 2 * KK * S;
      load_kv<HD>(p, nb, nb + KK * S, kt + KK, n_keys, kvh);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __half* k_s = kv_s + (it & 1) * 2 * KK * S;
    const __half* v_s = k_s + KK * S;
    // Visible to some row of this warp? (causal: kt <= warp_hi; window: last key >= first key of warp_lo)
    const bool visible = kt <= warp_hi && (p.window == 0 || warp_lo - (kt + KK - 1) < p.window);
    if (visible) {
      const bool edge = kt + KK - 1 > warp_lo || (p.window > 0 && warp_hi - kt >= p.window);
      float s[NT][4];
#pragma unroll
      for (int n = 0; n < NT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int kd = 0; kd < HD / 16; ++kd) {
        uint32_t a[4];
        ldmatrix_x4(a, q_s + (w0 + (lane & 15)) * S + kd * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, k_s + (n * 8 + (lane & 7) + ((lane >> 4) << 3)) * S + kd * 16 + ((lane >> 3) & 1) * 8);
          mma16816(s[n], a, b[0], b[1]);
          mma16816(s[n + 1], a, b[2], b[3]);
        }
      }
      // scores in log2 units, masked; row max
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int hr = e >> 1;
          float x = s[n][e] * p.scale;
          if (p.softcap > 0.f) x = p.softcap * tanhf(x / p.softcap);
          x *= 1.4426950408889634f;
          if (edge) {
            const int64_t j = kt + n * 8 + 2 * tig + (e & 1);
            if (j > my_pos[hr] || (p.window > 0 && my_pos[hr] - j >= p.window)) x = -INFINITY;
          }
          s[n][e] = x;
          mx[hr] = fmaxf(mx[hr], x);
        }
      float corr[2];
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
        const float m_new = fmaxf(m[hr], mx[hr]);
        corr[hr] = m_new == -INFINITY ? 1.f : exp2f(m[hr] - m_new);
        m[hr] = m_new;
        l[hr] *= corr[hr];
      }
#pragma unroll
      for (int d = 0; d < DT; ++d) {
        o[d][0] *= corr[0];
        o[d][1] *= corr[0];
        o[d][2] *= corr[1];
        o[d][3] *= corr[1];
      }
      const float base[2] = {m[0] == -INFINITY ? 0.f : m[0], m[1] == -INFINITY ? 0.f : m[1]};
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float w = exp2f(s[n][e] - base[e >> 1]);
          s[n][e] = w;
          l[e >> 1] += w;
        }
      // O += P · V: P's accumulators re-used as A fragments, V through ldmatrix.trans.
#pragma unroll
      for (int kk = 0; kk < KK / 16; ++kk) {
        uint32_t a[4];
        a[0] = pack_half2(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_half2(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int d = 0; d < DT; d += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, v_s + (kk * 16 + (lane & 15)) * S + d * 8 + (lane >> 4) * 8);
          mma16816(o[d], a, b[0], b[1]);
          mma16816(o[d + 1], a, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // this buffer is refilled next iteration
  }
  // l: sum over the 4 lanes of a row
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 1);
    l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 2);
  }
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int r = w0 + g + 8 * hr;
    if (r >= rows) continue;
    const float inv = 1.f / l[hr];
    float* out = p.out + (t0 + r) * q_stride + int64_t(h) * HD;
#pragma unroll
    for (int d = 0; d < DT; ++d)
      *reinterpret_cast<float2*>(out + d * 8 + 2 * tig) = make_float2(o[d][2 * hr] * inv, o[d][2 * hr + 1] * inv);
  }
}

template <int HD>
Status launch(const AttentionParams& p, cudaStream_t stream) {
  const size_t smem = Tile<HD>::kSmem;
  EMBER_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(flash_prefill_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
      "flash_prefill (shared memory limit)"));
  const dim3 grid(unsigned((p.n_tokens + kRows - 1) / kRows), unsigned(p.n_heads));
  flash_prefill_kernel<HD><<<grid, 32 * kWarps, smem, stream>>>(p);
  return cuda_status(cudaGetLastError(), "flash_prefill");
}

}  // namespace

bool flash_prefill_supported(const AttentionParams& p) {
  return (p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256) &&
         reinterpret_cast<uintptr_t>(p.q) % 16 == 0 && reinterpret_cast<uintptr_t>(p.k) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(p.v) % 16 == 0 && reinterpret_cast<uintptr_t>(p.out) % 8 == 0;
}

// Caller (attention_prefill) has checked the params and flash_prefill_supported.
Status flash_prefill(const AttentionParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64: return launch<64>(p, stream);
    case 128: return launch<128>(p, stream);
    case 256: return launch<256>(p, stream);
    default: return make_error(ErrorKind::unsupported, "flash_prefill: head_dim {}", p.head_dim);
  }
}

}  // namespace ember::cuda
