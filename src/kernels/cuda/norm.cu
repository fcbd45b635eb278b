#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/norm.h"

namespace ember::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rms_norm_kernel(RmsNormParams p) {
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.n_cols;
  float* y = p.y + row * p.n_cols;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < p.n_cols; i += blockDim.x) sum += x[i] * x[i];
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    sum = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (threadIdx.x == 0) partial[0] = sum;
  }
  __syncthreads();
  const float inv = rsqrtf(partial[0] / float(p.n_cols) + p.eps);
  for (int64_t i = threadIdx.x; i < p.n_cols; i += blockDim.x) y[i] = x[i] * inv * (p.w ? p.w[i] : 1.0f);
}

}  // namespace

Status rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_cols <= 0) return {};
  if (p.n_rows > INT32_MAX) return make_error(ErrorKind::invalid_argument, "rms_norm: {} rows is too many", p.n_rows);
  rms_norm_kernel<<<unsigned(p.n_rows), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "rms_norm");
}

}  // namespace ember::cuda
