#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embed.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/quant_device.cuh"

namespace ember::cuda {

namespace {

using quant::Type;

constexpr int kThreads = 128;

// grid (chunk blocks, n_tokens); one thread per chunk of the token's row. Ids outside
// the table give a row of NaN (the caller validates ids; this only keeps reads in bounds).
template <Type T>
__global__ void embed_kernel(EmbedParams p) {
  const int64_t n_chunks = p.n_embd / qdev::Chunk<T>::kElems;
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= n_chunks) return;
  const int t = blockIdx.y;
  const int32_t id = p.tokens[t];
  float* out = p.out + int64_t(t) * p.n_embd;
  if (id < 0 || id >= p.n_vocab) {
    for (int i = 0; i < qdev::Chunk<T>::kElems; ++i) out[c * qdev::Chunk<T>::kElems + i] = __int_as_float(0x7fc00000);
    return;
  }
  const uint8_t* row = static_cast<const uint8_t*>(p.table) + int64_t(id) * p.row_bytes;
  const float scale = p.scale;
  auto emit = [&](int64_t e0, const float (&v)[8]) {
    float4* o = reinterpret_cast<float4*>(out + e0);
    o[0] = make_float4(v[0] * scale, v[1] * scale, v[2] * scale, v[3] * scale);
    o[1] = make_float4(v[4] * scale, v[5] * scale, v[6] * scale, v[7] * scale);
  };
  qdev::RowDecoder<T>::chunk(row, c, emit);
}

}  // namespace

Status embed(const EmbedParams& p, cudaStream_t stream) {
  if (p.n_tokens <= 0) return {};
  const int mult = weight_row_multiple(p.type);
  if (mult == 0 || p.n_embd % mult != 0)
    return make_error(ErrorKind::unsupported, "embed: {} rows of {} elements have no CUDA kernel",
                      quant::type_name(p.type), p.n_embd);
  if (reinterpret_cast<uintptr_t>(p.table) % 16 != 0 || reinterpret_cast<uintptr_t>(p.out) % 16 != 0 ||
      p.row_bytes % qdev::chunk_align(p.type) != 0)
    return make_error(ErrorKind::invalid_argument, "embed: table or output is not aligned");
  if (p.n_tokens > 65535) return make_error(ErrorKind::invalid_argument, "embed: {} tokens is too many", p.n_tokens);
  const int64_t n_chunks = p.n_embd / mult;
  const dim3 grid(unsigned((n_chunks + kThreads - 1) / kThreads), unsigned(p.n_tokens));
  qdev::dispatch_type(p.type, [&](auto tag) { embed_kernel<decltype(tag)::value><<<grid, kThreads, 0, stream>>>(p); });
  return cuda_status(cudaGetLastError(), "embed");
}

}  // namespace ember::cuda
