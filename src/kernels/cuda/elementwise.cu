#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace ember::cuda {

namespace {

constexpr int kThreads = 256;

// Grid-stride loop bounds for n elements: enough blocks to fill the GPU, capped.
unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 65535 ? b : 65535);
}

__device__ __forceinline__ int64_t first_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

__global__ void gated_act_kernel(GatedActParams p) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = first_index(); i < p.n; i += grid_stride()) {
    const float g = p.gate[i];
    float a;
    if (p.act == GatedAct::silu) a = g / (1.0f + expf(-g));
    else a = 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
    p.y[i] = a * p.up[i];
  }
}

__global__ void add_kernel(AddParams p) {
  for (int64_t i = first_index(); i < p.n; i += grid_stride()) p.x[i] += p.y[i];
}

__global__ void add_bias_kernel(AddBiasParams p) {
  const int64_t n = p.n_rows * p.n_cols;
  for (int64_t i = first_index(); i < n; i += grid_stride()) p.y[i] += p.b[i % p.n_cols];
}

__global__ void softcap_kernel(SoftcapParams p) {
  for (int64_t i = first_index(); i < p.n; i += grid_stride()) p.x[i] = p.cap * tanhf(p.x[i] / p.cap);
}

__global__ void convert_kernel(ConvertParams p) {
  for (int64_t i = first_index(); i < p.n; i += grid_stride()) p.y[i] = __float2half_rn(p.x[i]);
}

}  // namespace

Status gated_act(const GatedActParams& p, cudaStream_t stream) {
  if (p.n <= 0) return {};
  gated_act_kernel<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "gated_act");
}

Status add(const AddParams& p, cudaStream_t stream) {
  if (p.n <= 0) return {};
  add_kernel<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "add");
}

Status add_bias(const AddBiasParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_cols <= 0) return {};
  add_bias_kernel<<<blocks_for(p.n_rows * p.n_cols), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "add_bias");
}

Status softcap(const SoftcapParams& p, cudaStream_t stream) {
  if (p.n <= 0) return {};
  if (!(p.cap > 0.0f)) return make_error(ErrorKind::invalid_argument, "softcap: cap must be positive");
  softcap_kernel<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "softcap");
}

Status convert_f32_to_f16(const ConvertParams& p, cudaStream_t stream) {
  if (p.n <= 0) return {};
  convert_kernel<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "convert_f32_to_f16");
}

}  // namespace ember::cuda
