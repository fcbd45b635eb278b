#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/quant_device.cuh"

namespace ember::cuda {

namespace {

using quant::Type;

constexpr int kGemvWarps = 4;  // output rows per block of the gemv

// One warp per output row: lane l decodes chunks l, l + 32, ... of the weight row and
// dots each group of 8 values with every token's activations.
template <Type T>
__global__ void __launch_bounds__(32 * kGemvWarps) gemv_kernel(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (row >= p.n_out) return;
  const uint8_t* w = static_cast<const uint8_t*>(p.w) + row * p.w_row_bytes;
  const int64_t n_chunks = p.n_in / qdev::Chunk<T>::kElems;
  const int M = p.n_tokens;
  float acc[kGemvMaxTokens];
#pragma unroll
  for (int m = 0; m < kGemvMaxTokens; ++m) acc[m] = 0.0f;
  auto emit = [&](int64_t e0, const float (&v)[8]) {
#pragma unroll
    for (int m = 0; m < kGemvMaxTokens; ++m) {
      if (m < M) {
        const float4* x = reinterpret_cast<const float4*>(p.x + m * p.n_in + e0);
        const float4 a = x[0], b = x[1];
        acc[m] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y + v[6] * b.z +
                  v[7] * b.w;
      }
    }
  };
  for (int64_t c = lane; c < n_chunks; c += 32) qdev::RowDecoder<T>::chunk(w, c, emit);
#pragma unroll
  for (int m = 0; m < kGemvMaxTokens; ++m) {
    if (m < M) {
      float s = acc[m];
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) p.y[m * p.n_out + row] = s;
    }
  }
}

// One thread per chunk of one row; writes 8 halves (16 bytes) per group.
template <Type T>
__global__ void dequantize_f16_kernel(DequantizeParams p) {
  const int64_t n_chunks = p.n_in / qdev::Chunk<T>::kElems;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_chunks * p.n_out) return;
  const int64_t row = i / n_chunks, c = i % n_chunks;
  const uint8_t* w = static_cast<const uint8_t*>(p.w) + row * p.w_row_bytes;
  __half* out = p.out + row * p.n_in;
  auto emit = [&](int64_t e0, const float (&v)[8]) {
    __half2 h[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    *reinterpret_cast<uint4*>(out + e0) = *reinterpret_cast<const uint4*>(h);
  };
  qdev::RowDecoder<T>::chunk(w, c, emit);
}

Status check_weight(const char* what, Type t, const void* w, int64_t n_out, int64_t n_in, int64_t row_bytes) {
  const int mult = weight_row_multiple(t);
  if (mult == 0)
    return make_error(ErrorKind::unsupported, "{}: weight type {} has no CUDA kernel yet", what, quant::type_name(t));
  if (n_in % mult != 0)
    return make_error(ErrorKind::unsupported, "{}: row length {} of a {} weight is not a multiple of {}", what, n_in,
                      quant::type_name(t), mult);
  const auto expect = quant::row_bytes(t, n_in);  // row_bytes is the stride: rows may be padded (expert matrices)
  if (!expect || *expect > row_bytes)
    return make_error(ErrorKind::invalid_argument, "{}: row stride {} is less than a row of {} x {}", what, row_bytes,
                      n_in, quant::type_name(t));
  if (reinterpret_cast<uintptr_t>(w) % 16 != 0 || row_bytes % qdev::chunk_align(t) != 0)
    return make_error(ErrorKind::invalid_argument, "{}: weight is not aligned for its format", what);
  if (n_out > int64_t(INT32_MAX) * kGemvWarps)
    return make_error(ErrorKind::invalid_argument, "{}: {} output rows is too many", what, n_out);
  return {};
}

}  // namespace

bool weight_type_supported(quant::Type t) { return qdev::chunk_elems(t) > 0; }
int weight_row_multiple(quant::Type t) { return qdev::chunk_elems(t); }

Status gemv(const GemvParams& p, cudaStream_t stream) {
  EMBER_RETURN_IF_ERROR(check_weight("gemv", p.w_type, p.w, p.n_out, p.n_in, p.w_row_bytes));
  if (p.n_tokens < 1 || p.n_tokens > kGemvMaxTokens)
    return make_error(ErrorKind::invalid_argument, "gemv: {} tokens (supported 1..{})", p.n_tokens, kGemvMaxTokens);
  if (reinterpret_cast<uintptr_t>(p.x) % 16 != 0)
    return make_error(ErrorKind::invalid_argument, "gemv: activations are not 16-byte aligned");
  if (p.n_out == 0) return {};
  const unsigned blocks = unsigned((p.n_out + kGemvWarps - 1) / kGemvWarps);
  qdev::dispatch_type(p.w_type, [&](auto tag) {
    gemv_kernel<decltype(tag)::value><<<blocks, 32 * kGemvWarps, 0, stream>>>(p);
  });
  return cuda_status(cudaGetLastError(), "gemv");
}

Status dequantize_f16(const DequantizeParams& p, cudaStream_t stream) {
  EMBER_RETURN_IF_ERROR(check_weight("dequantize_f16", p.w_type, p.w, p.n_out, p.n_in, p.w_row_bytes));
  if (reinterpret_cast<uintptr_t>(p.out) % 16 != 0)
    return make_error(ErrorKind::invalid_argument, "dequantize_f16: output is not 16-byte aligned");
  const int64_t n = p.n_out * (p.n_in / weight_row_multiple(p.w_type));
  if (n == 0) return {};
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > INT32_MAX) return make_error(ErrorKind::invalid_argument, "dequantize_f16: tensor too large");
  qdev::dispatch_type(p.w_type, [&](auto tag) {
    dequantize_f16_kernel<decltype(tag)::value><<<unsigned(blocks), kThreads, 0, stream>>>(p);
  });
  return cuda_status(cudaGetLastError(), "dequantize_f16");
}

Status matmul(const MatmulParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0 || p.n_out == 0) return {};
  if (p.n_tokens <= kGemvMaxTokens)
    return gemv({p.w_type, p.w, p.n_out, p.n_in, p.w_row_bytes, p.x, int(p.n_tokens), p.y}, stream);
  if (p.cublas == nullptr || (p.w_f16 == nullptr && p.w_type != Type::F16) || p.x_f16 == nullptr)
    return make_error(ErrorKind::invalid_argument, "matmul: {} tokens need the cuBLAS handle and f16 workspaces",
                      p.n_tokens);
  if (p.n_out > INT32_MAX || p.n_in > INT32_MAX || p.n_tokens > INT32_MAX)
    return make_error(ErrorKind::invalid_argument, "matmul: dimensions exceed cuBLAS's int range");
  // f16 weights are multiplied in place; other formats are dequantized to f16 first.
  const __half* w16 = static_cast<const __half*>(p.w);
  if (p.w_type != Type::F16) {
    EMBER_RETURN_IF_ERROR(dequantize_f16({p.w_type, p.w, p.n_out, p.n_in, p.w_row_bytes, p.w_f16}, stream));
    w16 = p.w_f16;
  }
  if (!p.x_f16_ready) EMBER_RETURN_IF_ERROR(convert_f32_to_f16({p.x, p.x_f16, p.n_tokens * p.n_in}, stream));
  if (cublasSetStream(p.cublas, stream) != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorKind::internal, "matmul: cublasSetStream failed");
  // Column-major view: W (row-major [N][K]) is K x N, so Y^T (N x M) = op_T(W) * X^T.
  const float alpha = 1.0f, beta = 0.0f;
  const int N = int(p.n_out), M = int(p.n_tokens), K = int(p.n_in);
  const cublasStatus_t st = cublasGemmEx(p.cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w16, CUDA_R_16F, K,
                                         p.x_f16, CUDA_R_16F, K, &beta, p.y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorKind::internal, "matmul: cublasGemmEx failed ({})", cublasGetStatusString(st));
  return cuda_status(cudaGetLastError(), "matmul");
}

}  // namespace ember::cuda
