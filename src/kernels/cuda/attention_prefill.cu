// Tiled prefill attention (CUDA cores, fp32 math): a block owns 16 query rows of one
// head and walks the visible keys in tiles of 32 staged in shared memory as f16. Used
// for head dims the tensor-core flash_prefill (flash_prefill.cu) has no variant for.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/cuda_check.h"

namespace ember::cuda {

namespace {

using attn::kPairs;

constexpr int kWarps = 4;
constexpr int kQTile = 16;                   // query rows per block
constexpr int kRowsPerWarp = kQTile / kWarps;
constexpr int kKTile = 32;                   // keys per tile: one per lane

size_t smem_bytes(int hd) {
  return size_t(kQTile) * hd * sizeof(float) + size_t(kKTile) * (hd + 2) * sizeof(__half) +
         size_t(kKTile) * hd * sizeof(__half);
}

// Online-softmax state of one query row, spread over the warp (lane owns dims 2 lane + 64 i).
struct RowState {
  float m, l;
  float2 acc[kPairs];
};

// Scores one row against the tile (lane = key), then folds the tile into the state.
__device__ __forceinline__ void attend_tile(const AttentionParams& p, const float* q_row, const __half* k_s,
                                            const __half* v_s, int64_t q_pos, int64_t kt, RowState& st) {
  const int lane = threadIdx.x & 31, hd = p.head_dim;
  const int64_t j = kt + lane;
  const bool valid = j <= q_pos && (p.window == 0 || q_pos - j < p.window);
  float score = -INFINITY;
  if (valid) {
    const __half2* k_row = reinterpret_cast<const __half2*>(k_s + lane * (hd + 2));
    float dot = 0.0f;
    for (int c = 0; c < hd / 2; ++c) {
      const float2 k = __half22float2(k_row[c]);
      dot += q_row[2 * c] * k.x + q_row[2 * c + 1] * k.y;
    }
    score = attn::cap_score(dot, p);
  }
  const float tile_max = attn::warp_max(score);
  if (tile_max == -INFINITY) return;  // warp-uniform: no visible key in this tile
  const float m_new = fmaxf(st.m, tile_max);
  const float corr = expf(st.m - m_new);
  const float w = valid ? expf(score - m_new) : 0.0f;
  st.l = st.l * corr + attn::warp_sum(w);
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    st.acc[i].x *= corr;
    st.acc[i].y *= corr;
  }
  for (int jj = 0; jj < kKTile; ++jj) {
    const float wj = __shfl_sync(0xffffffffu, w, jj);
    if (wj == 0.0f) continue;  // uniform across the warp
    const __half2* v_row = reinterpret_cast<const __half2*>(v_s + jj * hd);
#pragma unroll
    for (int i = 0; i < kPairs; ++i) {
      if (2 * lane + 64 * i < hd) {
        const float2 v = __half22float2(v_row[lane + 32 * i]);
        st.acc[i].x += wj * v.x;
        st.acc[i].y += wj * v.y;
      }
    }
  }
  st.m = m_new;
}

__global__ void __launch_bounds__(32 * kWarps) prefill_kernel(AttentionParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int hd = p.head_dim;
  float* q_s = reinterpret_cast<float*>(smem);                  // [kQTile][hd]
  __half* k_s = reinterpret_cast<__half*>(q_s + kQTile * hd);    // [kKTile][hd + 2] (padded: no bank conflicts)
  __half* v_s = k_s + kKTile * (hd + 2);                         // [kKTile][hd]
  const int h = blockIdx.y, t0 = blockIdx.x * kQTile;
  const int rows = min(kQTile, p.n_tokens - t0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kvh = h / (p.n_heads / p.n_kv_heads);
  const int64_t kv_stride = int64_t(p.n_kv_heads) * hd, q_stride = int64_t(p.n_heads) * hd;

  for (int i = threadIdx.x; i < rows * hd; i += blockDim.x)
    q_s[i] = p.q[(t0 + i / hd) * q_stride + int64_t(h) * hd + i % hd];
  const int64_t q_pos0 = p.pos0 + t0;
  const int64_t k_lo = attn::first_key(q_pos0, p.window), k_hi = q_pos0 + rows;

  RowState st[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    st[r].m = -INFINITY;
    st[r].l = 0.0f;
#pragma unroll
    for (int i = 0; i < kPairs; ++i) st[r].acc[i] = make_float2(0.0f, 0.0f);
  }
  const int half_hd = hd / 2;
  for (int64_t kt = k_lo; kt < k_hi; kt += kKTile) {
    __syncthreads();  // the previous tile is consumed (and q_s is loaded)
    for (int i = threadIdx.x; i < kKTile * half_hd; i += blockDim.x) {
      const int jr = i / half_hd, c = i % half_hd;
      const int64_t j = kt + jr;
      __half2 k = __floats2half2_rn(0.0f, 0.0f), v = k;
      if (j < k_hi) {
        k = reinterpret_cast<const __half2*>(p.k + j * kv_stride + int64_t(kvh) * hd)[c];
        v = reinterpret_cast<const __half2*>(p.v + j * kv_stride + int64_t(kvh) * hd)[c];
      }
      reinterpret_cast<__half2*>(k_s + jr * (hd + 2))[c] = k;
      reinterpret_cast<__half2*>(v_s + jr * hd)[c] = v;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp + kWarps * r;
      if (row < rows) attend_tile(p, q_s + row * hd, k_s, v_s, q_pos0 + row, kt, st[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp + kWarps * r;
    if (row >= rows) continue;
    float* out = p.out + (t0 + row) * q_stride + int64_t(h) * hd;
    const float inv = 1.0f / st[r].l;
#pragma unroll
    for (int i = 0; i < kPairs; ++i) {
      const int d = 2 * lane + 64 * i;
      if (d < hd) {
        out[d] = st[r].acc[i].x * inv;
        out[d + 1] = st[r].acc[i].y * inv;
      }
    }
  }
}

__global__ void kv_store_kernel(KvStoreParams p) {
  const int64_t n = int64_t(p.n_tokens) * p.width;
  const int64_t base = (p.pos_dev != nullptr ? int64_t(*p.pos_dev) : p.pos0) * p.width;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    p.k_cache[base + i] = __float2half_rn(p.k[i]);
    p.v_cache[base + i] = __float2half_rn(p.v[i]);
  }
}

}  // namespace

Status attention_prefill(const AttentionParams& p, cudaStream_t stream) {
  EMBER_RETURN_IF_ERROR(attn::check_params("attention_prefill", p));
  if (p.n_tokens <= 0) return {};
  if (flash_prefill_supported(p)) return flash_prefill(p, stream);
  const size_t smem = smem_bytes(p.head_dim);
  EMBER_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
      "attention_prefill (shared memory limit)"));
  const dim3 grid(unsigned((p.n_tokens + kQTile - 1) / kQTile), unsigned(p.n_heads));
  prefill_kernel<<<grid, 32 * kWarps, smem, stream>>>(p);
  return cuda_status(cudaGetLastError(), "attention_prefill");
}

Status kv_store(const KvStoreParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0 || p.width <= 0) return {};
  const int64_t n = int64_t(p.n_tokens) * p.width;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  kv_store_kernel<<<unsigned(blocks), 256, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "kv_store");
}

}  // namespace ember::cuda
