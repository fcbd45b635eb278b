#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/pdl.cuh"

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
  pdl_trigger();
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

// Rows of up to kVecThreads * 4 * kMaxVec columns (n_cols % 4 == 0) held in registers:
// thread t owns float4 number t + k * kVecThreads, all loads in flight at once. A group
// of 32 columns is 8 consecutive threads, so the int8 copy of y needs only shuffles.
constexpr int kVecThreads = 256, kMaxVec = 8;

__device__ float block_sum_vec(float v) {
  __shared__ float partial[kVecThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kVecThreads / 32; ++i) total += partial[i];
  __syncthreads();  // partial may be reused by the next call
  return total;
}

__device__ __forceinline__ float4 ld4(const float* p, int64_t v) { return reinterpret_cast<const float4*>(p)[v]; }
__device__ __forceinline__ float sumsq(const float4& a) { return a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w; }
__device__ __forceinline__ float4 scale4(const float4& a, float s, const float4& w) {
  return make_float4(a.x * s * w.x, a.y * s * w.y, a.z * s * w.z, a.w * s * w.w);
}

__global__ void __launch_bounds__(kVecThreads) residual_norm_vec_kernel(ResidualNormParams p) {
  pdl_trigger();
  const int64_t row = blockIdx.x, nv = p.n_cols / 4;
  float* x = p.x + row * p.n_cols;
  float* delta = p.delta + row * p.n_cols;
  const float4 ones = make_float4(1.0f, 1.0f, 1.0f, 1.0f);
  float4 xv[kMaxVec], dv[kMaxVec];
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    const int64_t v = threadIdx.x + int64_t(k) * kVecThreads;
    if (v < nv) {
      xv[k] = ld4(x, v);
      dv[k] = ld4(delta, v);
    }
  }
  if (p.delta_w != nullptr) {
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxVec; ++k)
      if (threadIdx.x + int64_t(k) * kVecThreads < nv) s += sumsq(dv[k]);
    const float inv = rsqrtf(block_sum_vec(s) / float(p.n_cols) + p.eps);
#pragma unroll
    for (int k = 0; k < kMaxVec; ++k) {
      const int64_t v = threadIdx.x + int64_t(k) * kVecThreads;
      if (v < nv) {
        dv[k] = scale4(dv[k], inv, ld4(p.delta_w, v));
        reinterpret_cast<float4*>(delta)[v] = dv[k];
      }
    }
  }
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    const int64_t v = threadIdx.x + int64_t(k) * kVecThreads;
    if (v < nv) {
      xv[k] = make_float4(xv[k].x + dv[k].x, xv[k].y + dv[k].y, xv[k].z + dv[k].z, xv[k].w + dv[k].w);
      reinterpret_cast<float4*>(x)[v] = xv[k];
      s += sumsq(xv[k]);
    }
  }
  if (p.y == nullptr) return;
  const float inv = rsqrtf(block_sum_vec(s) / float(p.n_cols) + p.eps);
  float* y = p.y + row * p.n_cols;
#pragma unroll
  for (int k = 0; k < kMaxVec; ++k) {
    const int64_t v = threadIdx.x + int64_t(k) * kVecThreads;
    const bool active = v < nv;  // the same for the 8 threads of a group (nv % 8 == 0 when yq is set)
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (active) {
      o = scale4(xv[k], inv, p.w ? ld4(p.w, v) : ones);
      reinterpret_cast<float4*>(y)[v] = o;
    }
    if (p.yq == nullptr) continue;
    float amax = fmaxf(fmaxf(fabsf(o.x), fabsf(o.y)), fmaxf(fabsf(o.z), fabsf(o.w)));
    for (int off = 1; off < 8; off <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    if (!active) continue;
    char4 q;
    q.x = char(__float2int_rn(o.x * id));
    q.y = char(__float2int_rn(o.y * id));
    q.z = char(__float2int_rn(o.z * id));
    q.w = char(__float2int_rn(o.w * id));
    reinterpret_cast<char4*>(p.yq + row * p.n_cols)[v] = q;
    if ((threadIdx.x & 7) == 0) p.yd[row * (p.n_cols / 32) + v / 8] = d;
  }
}

bool vec_ok(const ResidualNormParams& p) {
  auto a16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  return p.n_cols % 4 == 0 && p.n_cols <= int64_t(kVecThreads) * 4 * kMaxVec && a16(p.x) && a16(p.delta) &&
         a16(p.delta_w) && a16(p.w) && a16(p.y);
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

bool residual_norm_q8_supported(int64_t n_cols) {
  return n_cols % 32 == 0 && n_cols <= int64_t(kVecThreads) * 4 * kMaxVec;
}

Status residual_norm(const ResidualNormParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_cols <= 0) return {};
  EMBER_RETURN_IF_ERROR(check_rows("residual_norm", p.n_rows));
  if (p.yq != nullptr || p.yd != nullptr) {
    if (p.y == nullptr || p.yq == nullptr || p.yd == nullptr || !residual_norm_q8_supported(p.n_cols) || !vec_ok(p) ||
        reinterpret_cast<uintptr_t>(p.yq) % 4 != 0)
      return make_error(ErrorKind::invalid_argument, "residual_norm: the int8 output needs y, yq, yd and aligned "
                        "rows of a multiple of 32 up to {} columns (got {})", kVecThreads * 4 * kMaxVec, p.n_cols);
  }
  if (vec_ok(p)) residual_norm_vec_kernel<<<unsigned(p.n_rows), kVecThreads, 0, stream>>>(p);
  else residual_norm_kernel<<<unsigned(p.n_rows), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "residual_norm");
}

}  // namespace ember::cuda
