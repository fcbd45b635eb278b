#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/rope.h"

namespace ember::cuda {

namespace {

constexpr int kThreads = 128;

// One thread per (token, head, pair). The angle is computed in double like the CPU
// twin, so long positions keep full precision.
__global__ void rope_kernel(RopeParams p) {
  const int half = p.head_dim / 2;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t per_token = int64_t(p.n_heads) * half;
  if (i >= per_token * p.n_tokens) return;
  const int t = int(i / per_token);
  const int h = int((i % per_token) / half);
  const int k = int(i % half);
  const double position = double(p.positions[t]) * double(p.freq_scale);
  const double theta = position * pow(double(p.freq_base), -2.0 * k / p.head_dim);
  double s, c;
  sincos(theta, &s, &c);
  float* head = p.x + t * p.row_stride + int64_t(h) * p.head_dim;
  const int a = p.neox ? k : 2 * k;
  const int b = p.neox ? k + half : 2 * k + 1;
  const float x0 = head[a], x1 = head[b];
  const float cf = float(c), sf = float(s);
  head[a] = x0 * cf - x1 * sf;
  head[b] = x0 * sf + x1 * cf;
}

// One thread per (token, head, pair) over the q heads then the kv heads.
__global__ void rope_store_kernel(RopeStoreParams p) {
  const int half = p.head_dim / 2;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t per_token = int64_t(p.n_heads + p.n_kv_heads) * half;
  if (i >= per_token * p.n_tokens) return;
  const int t = int(i / per_token);
  const int h = int((i % per_token) / half);
  const int k = int(i % half);
  const int32_t pos = p.positions[t];
  const double theta = double(pos) * double(p.freq_scale) * pow(double(p.freq_base), -2.0 * k / p.head_dim);
  double s, c;
  sincos(theta, &s, &c);
  const bool is_q = h < p.n_heads;
  const int64_t kv_w = int64_t(p.n_kv_heads) * p.head_dim;
  const int64_t col = int64_t(is_q ? h : h - p.n_heads) * p.head_dim;
  float* head = is_q ? p.q + t * int64_t(p.n_heads) * p.head_dim + col : p.k + t * kv_w + col;
  const int a = p.neox ? k : 2 * k;
  const int b = p.neox ? k + half : 2 * k + 1;
  const float x0 = head[a], x1 = head[b];
  const float cf = float(c), sf = float(s);
  const float y0 = x0 * cf - x1 * sf, y1 = x0 * sf + x1 * cf;
  head[a] = y0;
  head[b] = y1;
  if (is_q) return;
  __half* kc = p.k_cache + int64_t(pos) * kv_w + col;
  __half* vc = p.v_cache + int64_t(pos) * kv_w + col;
  const float* v = p.v + t * kv_w + col;
  kc[a] = __float2half_rn(y0);
  kc[b] = __float2half_rn(y1);
  vc[a] = __float2half_rn(v[a]);
  vc[b] = __float2half_rn(v[b]);
}

}  // namespace

Status rope_store(const RopeStoreParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0) return {};
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.n_heads <= 0 || p.n_kv_heads <= 0)
    return make_error(ErrorKind::invalid_argument, "rope_store: head_dim {} (even) and {} / {} heads", p.head_dim,
                      p.n_heads, p.n_kv_heads);
  const int64_t n = int64_t(p.n_tokens) * (p.n_heads + p.n_kv_heads) * (p.head_dim / 2);
  if ((n + kThreads - 1) / kThreads > INT32_MAX) return make_error(ErrorKind::invalid_argument, "rope_store: too large");
  rope_store_kernel<<<unsigned((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "rope_store");
}

Status rope(const RopeParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0 || p.n_heads <= 0) return {};
  if (p.head_dim <= 0 || p.head_dim % 2 != 0)
    return make_error(ErrorKind::invalid_argument, "rope: head_dim {} must be even and positive", p.head_dim);
  const int64_t n = int64_t(p.n_tokens) * p.n_heads * (p.head_dim / 2);
  rope_kernel<<<unsigned((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "rope");
}

}  // namespace ember::cuda
