#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/paged_attention.h"

namespace ember::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerWarp = kPagedTileRows / kWarps;
constexpr int kKeyTile = 32;  // keys per shared-memory tile: one per lane

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void kv_store_kernel(PagedKvStoreParams p) {
  const int half_w = p.kv_width / 2;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(p.n_tokens) * half_w) return;
  const int64_t t = i / half_w, c = i % half_w;
  const int64_t dst = p.slots[t] * half_w + c;
  const float2 k = reinterpret_cast<const float2*>(p.k + t * p.kv_width)[c];
  const float2 v = reinterpret_cast<const float2*>(p.v + t * p.kv_width)[c];
  reinterpret_cast<__half2*>(p.k_pages)[dst] = __floats2half2_rn(k.x, k.y);
  reinterpret_cast<__half2*>(p.v_pages)[dst] = __floats2half2_rn(v.x, v.y);
}

// Keys [k0, k0 + 32) of the sequence (zeros from s_end on) into k_s / v_s ([32][hd + 2]).
// Warp w loads keys w, w + 4, ...; every load of the tile is issued before any store, so
// the tile costs one memory latency.
template <int NP>
__device__ __forceinline__ void load_key_tile(const PagedAttentionParams& p, const int32_t* table, int kvh, int k0,
                                              int s_end, __half* k_s, __half* v_s) {
  const int hd = p.head_dim, pairs = hd / 2, ld = hd + 2;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t kv_w = int64_t(p.n_kv_heads) * hd;
  constexpr int kKeysPerWarp = kKeyTile / kWarps;
  __half2 kr[kKeysPerWarp][NP], vr[kKeysPerWarp][NP];
#pragma unroll
  for (int jj = 0; jj < kKeysPerWarp; ++jj) {
    const int kp = k0 + warp + kWarps * jj;
    const bool in = kp < s_end;
    const int64_t slot = in ? int64_t(table[kp / p.block_size]) * p.block_size + kp % p.block_size : 0;
    const __half2* kg = reinterpret_cast<const __half2*>(p.k + slot * kv_w + int64_t(kvh) * hd);
    const __half2* vg = reinterpret_cast<const __half2*>(p.v + slot * kv_w + int64_t(kvh) * hd);
#pragma unroll
    for (int cc = 0; cc < NP; ++cc) {
      const int c = lane + 32 * cc;
      const bool ok = in && c < pairs;
      kr[jj][cc] = ok ? kg[c] : __float2half2_rn(0.0f);
      vr[jj][cc] = ok ? vg[c] : __float2half2_rn(0.0f);
    }
  }
#pragma unroll
  for (int jj = 0; jj < kKeysPerWarp; ++jj) {
    const int j = warp + kWarps * jj;
#pragma unroll
    for (int cc = 0; cc < NP; ++cc) {
      const int c = lane + 32 * cc;
      if (c < pairs) {
        reinterpret_cast<__half2*>(k_s + j * ld)[c] = kr[jj][cc];
        reinterpret_cast<__half2*>(v_s + j * ld)[c] = vr[jj][cc];
      }
    }
  }
}

// scale · q·k (soft-capped): four partial sums (dims 4i..4i+3 -> sum i % 4) added in a fixed order
__device__ __forceinline__ float score(const float* qr, const __half* k_row, int pairs, float scale, float softcap) {
  const __half2* kr = reinterpret_cast<const __half2*>(k_row);
  float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
  int c = 0;
  for (; c + 1 < pairs; c += 2) {
    const float2 ka = __half22float2(kr[c]), kb = __half22float2(kr[c + 1]);
    d0 = fmaf(qr[2 * c], ka.x, d0);
    d1 = fmaf(qr[2 * c + 1], ka.y, d1);
    d2 = fmaf(qr[2 * c + 2], kb.x, d2);
    d3 = fmaf(qr[2 * c + 3], kb.y, d3);
  }
  if (c < pairs) {
    const float2 ka = __half22float2(kr[c]);
    d0 = fmaf(qr[2 * c], ka.x, d0);
    d1 = fmaf(qr[2 * c + 1], ka.y, d1);
  }
  float s = ((d0 + d1) + (d2 + d3)) * scale;
  if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
  return s;
}

// One row's online-softmax step over a key tile: lane j holds key j's score s (or -inf).
template <int NP>
__device__ __forceinline__ void update_row(float s, bool visible, const __half* v_s, int ld, int pairs, int lane,
                                           float& m, float& l, float2 (&acc)[NP]) {
  const float tile_max = warp_max(s);
  if (tile_max == -INFINITY) return;  // nothing visible in this tile for this row (warp-uniform)
  const float m_new = fmaxf(m, tile_max);
  const float corr = expf(m - m_new);
  const float pj = visible ? expf(s - m_new) : 0.0f;
  l = l * corr + warp_sum(pj);
  m = m_new;
#pragma unroll
  for (int c = 0; c < NP; ++c) {
    acc[c].x *= corr;
    acc[c].y *= corr;
  }
  for (int j = 0; j < kKeyTile; ++j) {
    const float w = __shfl_sync(0xffffffffu, pj, j);
    const __half2* vr = reinterpret_cast<const __half2*>(v_s + j * ld);
#pragma unroll
    for (int c = 0; c < NP; ++c) {
      const int cc = lane + 32 * c;
      if (cc >= pairs) continue;
      const float2 vf = __half22float2(vr[cc]);
      acc[c].x = fmaf(w, vf.x, acc[c].x);
      acc[c].y = fmaf(w, vf.y, acc[c].y);
    }
  }
}

// The row's split partial: acc [head_dim], then m and l.
template <int NP>
__device__ __forceinline__ void store_partial(const PagedAttentionParams& p, int64_t t, int64_t h, int split, int lane,
                                              float m, float l, const float2 (&acc)[NP]) {
  const int hd = p.head_dim, pairs = hd / 2;
  float* dst = p.partials + ((t * p.n_heads + h) * p.max_splits + split) * (hd + 2);
#pragma unroll
  for (int c = 0; c < NP; ++c) {
    const int cc = lane + 32 * c;
    if (cc < pairs) reinterpret_cast<float2*>(dst)[cc] = acc[c];
  }
  if (lane == 0) {
    dst[hd] = m;
    dst[hd + 1] = l;
  }
}

// Block: (work item, kv head). Warp w owns rows w, w + 4, ... of the tile's
// n_rows x group (token, q head) rows; lane j scores key j of each 32-key tile and owns
// the value dims 2c, 2c + 1 for c = lane + 32 i (NP pairs per lane).
template <int NP>
__global__ void __launch_bounds__(kThreads, NP <= 2 ? 4 : 2) paged_attention_kernel(PagedAttentionParams p) {
  const PagedWork wk = p.work[blockIdx.x];
  const int kvh = int(blockIdx.y);
  const int group = p.n_heads / p.n_kv_heads, hd = p.head_dim, pairs = hd / 2, ld = hd + 2;
  const int n_rows = wk.n_rows * group;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int p_first = p.positions[wk.row0], p_last = p.positions[wk.row0 + wk.n_rows - 1];
  const int lo_first = p.window > 0 ? max(0, p_first - p.window + 1) : 0;
  const int s_begin = wk.split * kPagedSplitKeys;
  const int s_end = min(s_begin + kPagedSplitKeys, p_last + 1);
  if (s_end <= lo_first) return;  // no row of the tile sees a key of this split

  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* q_s = reinterpret_cast<float*>(smem_raw);                   // [kPagedTileRows][hd]
  __half* k_s = reinterpret_cast<__half*>(q_s + kPagedTileRows * hd);  // [32][hd + 2]
  __half* v_s = k_s + kKeyTile * ld;                                  // [32][hd + 2]
  const int64_t q_w = int64_t(p.n_heads) * hd;
  for (int i = int(threadIdx.x); i < n_rows * hd; i += kThreads) {
    const int r = i / hd, d = i % hd;
    const int64_t t = wk.row0 + r / group;
    q_s[i] = p.q[t * q_w + int64_t(kvh * group + r % group) * hd + d];
  }
  const int32_t* table = p.block_tables + p.table_start[p.seq_of[wk.row0]];

  float m[kRowsPerWarp], l[kRowsPerWarp];
  float2 acc[kRowsPerWarp][NP];
  int pos[kRowsPerWarp], lo[kRowsPerWarp];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp + kWarps * i;
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < NP; ++c) acc[i][c] = make_float2(0.0f, 0.0f);
    pos[i] = r < n_rows ? p.positions[wk.row0 + r / group] : -1;
    lo[i] = p.window > 0 ? max(0, pos[i] - p.window + 1) : 0;
  }

  // key tiles are aligned to the split start, so every row sees the same tiles in any batch
  const int first_tile = s_begin + (max(lo_first, s_begin) - s_begin) / kKeyTile * kKeyTile;
  for (int k0 = first_tile; k0 < s_end; k0 += kKeyTile) {
    __syncthreads();  // q_s is loaded; the previous key tile is no longer read
    load_key_tile<NP>(p, table, kvh, k0, s_end, k_s, v_s);
    __syncthreads();
    const int kp = k0 + lane;
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      const int r = warp + kWarps * i;
      if (r >= n_rows) continue;  // warp-uniform
      const bool visible = kp < s_end && kp <= pos[i] && kp >= lo[i];
      const float s = visible ? score(q_s + r * hd, k_s + lane * ld, pairs, p.scale, p.softcap) : -INFINITY;
      update_row<NP>(s, visible, v_s, ld, pairs, lane, m[i], l[i], acc[i]);
    }
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp + kWarps * i;
    if (r < n_rows)
      store_partial<NP>(p, wk.row0 + r / group, int64_t(kvh) * group + r % group, wk.split, lane, m[i], l[i], acc[i]);
  }
}

// One warp per (token, head): merges the token's splits in split order.
__global__ void __launch_bounds__(kThreads) combine_kernel(PagedAttentionParams p) {
  const int64_t job = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (job >= int64_t(p.n_tokens) * p.n_heads) return;
  const int lane = int(threadIdx.x) % 32, hd = p.head_dim;
  const int64_t t = job / p.n_heads, h = job % p.n_heads;
  const int pos = p.positions[t];
  const int lo = p.window > 0 ? max(0, pos - p.window + 1) : 0;
  const int s0 = lo / kPagedSplitKeys, s1 = pos / kPagedSplitKeys;
  const float* base = p.partials + job * p.max_splits * (hd + 2);
  float mx = -INFINITY;
  for (int s = s0; s <= s1; ++s) mx = fmaxf(mx, base[s * (hd + 2) + hd]);
  float sum = 0.0f;
  for (int s = s0; s <= s1; ++s) sum += base[s * (hd + 2) + hd + 1] * expf(base[s * (hd + 2) + hd] - mx);
  float* out = p.out + t * int64_t(p.n_heads) * hd + h * hd;
  for (int d = lane; d < hd; d += 32) {
    float o = 0.0f;
    for (int s = s0; s <= s1; ++s) o += base[s * (hd + 2) + d] * expf(base[s * (hd + 2) + hd] - mx);
    out[d] = o / sum;
  }
}

template <int NP>
Status launch_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  const size_t smem = size_t(kPagedTileRows) * p.head_dim * sizeof(float) +
                      2 * size_t(kKeyTile) * (p.head_dim + 2) * sizeof(__half);
  auto kernel = paged_attention_kernel<NP>;
  EMBER_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "paged_attention smem"));
  kernel<<<dim3(unsigned(p.n_work), unsigned(p.n_kv_heads)), kThreads, smem, stream>>>(p);
  return cuda_status(cudaGetLastError(), "paged_attention");
}

}  // namespace

void plan_paged_work(const int32_t* positions, const int32_t* seq_of, int n_tokens, int tokens_per_tile,
                     std::vector<PagedWork>& work) {
  work.clear();
  for (int t = 0; t < n_tokens;) {
    int n = 1;
    while (t + n < n_tokens && n < tokens_per_tile && seq_of[t + n] == seq_of[t]) ++n;
    const int n_splits = positions[t + n - 1] / kPagedSplitKeys + 1;
    for (int s = 0; s < n_splits; ++s) work.push_back({t, n, s, 0});
    t += n;
  }
}

Status paged_kv_store(const PagedKvStoreParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0) return {};
  if (p.kv_width <= 0 || p.kv_width % 2 != 0)
    return make_error(ErrorKind::invalid_argument, "paged_kv_store: kv width {} must be even", p.kv_width);
  const int64_t n = int64_t(p.n_tokens) * (p.kv_width / 2);
  constexpr int kStoreThreads = 256;
  kv_store_kernel<<<unsigned((n + kStoreThreads - 1) / kStoreThreads), kStoreThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "paged_kv_store");
}

Status paged_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0) return {};
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.head_dim > 256 || p.n_kv_heads <= 0 ||
      p.n_heads % p.n_kv_heads != 0 || p.n_heads / p.n_kv_heads > kPagedTileRows)
    return make_error(ErrorKind::unsupported, "paged_attention: head_dim {} (even, <= 256), {} heads over {} kv heads "
                      "(a group of at most {})", p.head_dim, p.n_heads, p.n_kv_heads, kPagedTileRows);
  if (p.block_size <= 0 || p.max_splits <= 0 || p.n_work <= 0 || p.n_kv_heads > 65535)
    return make_error(ErrorKind::invalid_argument, "paged_attention: block size {}, {} splits, {} work items",
                      p.block_size, p.max_splits, p.n_work);
  Status st;
  if (p.head_dim <= 64) st = launch_attention<1>(p, stream);
  else if (p.head_dim <= 128) st = launch_attention<2>(p, stream);
  else st = launch_attention<4>(p, stream);
  EMBER_RETURN_IF_ERROR(st);
  const int64_t jobs = int64_t(p.n_tokens) * p.n_heads;
  combine_kernel<<<unsigned((jobs + kWarps - 1) / kWarps), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "paged_attention combine");
}

}  // namespace ember::cuda
