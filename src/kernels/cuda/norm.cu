#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/norm.h"

namespace ember::cuda {

namespace {

constexpr int kThreads = 256;

// Sum of v over the block (kThreads threads); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[kThreads / 32];
  __shared__ float total;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x == 0) total = v;
  }
  __syncthreads();
  const float result = total;
  __syncthreads();  // total and partial may be reused by the next call
  return result;
}

__global__ void __launch_bounds__(kThreads) rms_norm_kernel(RmsNormParams p) {
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.n_cols;
  float* y = p.y + row * p.n_cols;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) sum += x[i] * x[i];
  const float inv = rsqrtf(block_sum(sum) / float(p.n_cols) + p.eps);
  for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) y[i] = x[i] * inv * (p.w ? p.w[i] : 1.0f);
}

// Each thread touches only the columns i = threadIdx.x + k * kThreads in every pass,
// so the passes need no barrier between them beyond the ones in block_sum.
__global__ void __launch_bounds__(kThreads) residual_norm_kernel(ResidualNormParams p) {
  const int64_t row = blockIdx.x;
  float* x = p.x + row * p.n_cols;
  float* delta = p.delta + row * p.n_cols;
  if (p.delta_w != nullptr) {
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) sum += delta[i] * delta[i];
    const float inv = rsqrtf(block_sum(sum) / float(p.n_cols) + p.eps);
    for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) delta[i] = delta[i] * inv * p.delta_w[i];
  }
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) {
    const float v = x[i] + delta[i];
    x[i] = v;
    sum += v * v;
  }
  if (p.y == nullptr) return;
  const float inv = rsqrtf(block_sum(sum) / float(p.n_cols) + p.eps);
  float* y = p.y + row * p.n_cols;
  for (int64_t i = threadIdx.x; i < p.n_cols; i += kThreads) y[i] = x[i] * inv * (p.w ? p.w[i] : 1.0f);
}

Status check_rows(const char* what, int64_t n_rows) {
  if (n_rows > INT32_MAX) return make_error(ErrorKind::invalid_argument, "{}: {} rows is too many", what, n_rows);
  return {};
}

}  // namespace

Status rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_cols <= 0) return {};
  EMBER_RETURN_IF_ERROR(check_rows("rms_norm", p.n_rows));
  rms_norm_kernel<<<unsigned(p.n_rows), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "rms_norm");
}

Status residual_norm(const ResidualNormParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_cols <= 0) return {};
  EMBER_RETURN_IF_ERROR(check_rows("residual_norm", p.n_rows));
  residual_norm_kernel<<<unsigned(p.n_rows), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "residual_norm");
}

}  // namespace ember::cuda
