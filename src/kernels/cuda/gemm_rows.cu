#include <mma.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_rows.h"

namespace ember::cuda {

namespace {

using namespace nvcuda;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;  // 0: the 16 bytes are zero-filled, nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// A block computes a BM x BN tile of y; warps own WM x WN sub-tiles of 16x16 fragments.
// K advances in BK-wide stages (STAGES-deep cp.async pipeline), 16 at a time inside.
template <int BM, int BN, int BK, int WM, int WN, int STAGES>
struct Tile {
  static constexpr int kWarpsN = BN / WN;
  static constexpr int kWarps = (BM / WM) * kWarpsN;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kLd = BK + 8;  // halves per shared row (16 bytes of padding)
  static constexpr int kStageHalves = (BM + BN) * kLd;
  static constexpr size_t kSmem = size_t(STAGES) * kStageHalves * sizeof(__half);
  static_assert(kSmem >= size_t(kWarps) * 256 * sizeof(float), "the epilogue scratch must fit");
  static_assert(BK % 16 == 0 && WM % 16 == 0 && WN % 16 == 0 && STAGES >= 2, "tile shape");
};

// The warp's FM x FN fragments (rows from row0, columns from col0) into out (+ bias),
// through a 16x16 float scratch in shared memory.
template <int FM, int FN>
__device__ __forceinline__ void store_tile(wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[FM][FN],
                                           float* scratch, int lane, int64_t row0, int64_t col0, int64_t n_rows,
                                           int64_t n_out, float* out, const float* bias) {
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int64_t row = row0 + i * 16 + e / 16, col = col0 + j * 16 + e % 16;
        if (row >= n_rows || col >= n_out) continue;
        float v = scratch[e];
        if (bias != nullptr) v += bias[col];
        out[row * n_out + col] = v;
      }
      __syncwarp();
    }
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(Tile<BM, BN, BK, WM, WN, STAGES>::kThreads) gemm_rows_kernel(GemmRowsParams p) {
  using T = Tile<BM, BN, BK, WM, WN, STAGES>;
  constexpr int FM = WM / 16, FN = WN / 16, kChunksPerRow = BK / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __half* smem = reinterpret_cast<__half*>(smem_raw);
  const int64_t row0 = int64_t(blockIdx.y) * BM, col0 = int64_t(blockIdx.x) * BN;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int wm = warp / T::kWarpsN, wn = warp % T::kWarpsN;
  // this block's K chunk [k_begin, k_end); gridDim.z chunks in all
  const int64_t k_begin = int64_t(blockIdx.z) * kGemmRowsSplitK;
  const int64_t k_end = k_begin + kGemmRowsSplitK < p.n_in ? k_begin + kGemmRowsSplitK : p.n_in;
  const int64_t n_k = (k_end - k_begin + BK - 1) / BK;
  // one chunk: y (+ bias); several: this chunk's sums into the workspace, reduced later
  float* const out = gridDim.z == 1 ? p.y : p.workspace + int64_t(blockIdx.z) * p.n_rows * p.n_out;
  const float* const bias = gridDim.z == 1 ? p.bias : nullptr;

  // x rows [row0, row0 + BM) and w rows [col0, col0 + BN) of K tile kt; outside: zeros
  auto load_stage = [&](int64_t kt, int stage) {
    __half* a = smem + stage * T::kStageHalves;
    __half* b = a + BM * T::kLd;
    const int64_t k0 = k_begin + kt * BK;
    for (int c = int(threadIdx.x); c < (BM + BN) * kChunksPerRow; c += T::kThreads) {
      const int r = c / kChunksPerRow, kc = (c % kChunksPerRow) * 8;
      const int64_t k = k0 + kc;
      if (r < BM) {
        const int64_t row = row0 + r;
        const bool ok = row < p.n_rows && k < k_end;
        cp_async16(a + r * T::kLd + kc, ok ? p.x + row * p.n_in + k : p.x, ok);
      } else {
        const int64_t row = col0 + (r - BM);
        const bool ok = row < p.n_out && k < k_end;
        cp_async16(b + (r - BM) * T::kLd + kc, ok ? p.w + row * p.n_in + k : p.w, ok);
      }
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < n_k) load_stage(s, s);
    cp_async_commit();
  }
  for (int64_t kt = 0; kt < n_k; ++kt) {
    cp_async_wait<STAGES - 2>();  // tile kt has landed
    __syncthreads();              // ... for every thread, and tile kt - 1 is no longer read
    const int64_t next = kt + STAGES - 1;
    if (next < n_k) load_stage(next, int(next % STAGES));
    cp_async_commit();
    const __half* a = smem + int(kt % STAGES) * T::kStageHalves;
    const __half* b = a + BM * T::kLd;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {  // the fixed reduction order: K ascending, 16 at a time
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], a + (wm * WM + i * 16) * T::kLd + kk, T::kLd);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], b + (wn * WN + j * 16) * T::kLd + kk, T::kLd);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the pipeline buffers become per-warp scratch for the epilogue

  store_tile<FM, FN>(acc, reinterpret_cast<float*>(smem_raw) + warp * 256, lane, row0 + wm * WM, col0 + wn * WN,
                     p.n_rows, p.n_out, out, bias);
}

// y = sum of the chunks' partial sums in chunk order (+ bias)
__global__ void reduce_chunks_kernel(GemmRowsParams p, int n_chunks) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n = p.n_rows * p.n_out;
  if (i >= n) return;
  float v = p.workspace[i];
  for (int c = 1; c < n_chunks; ++c) v += p.workspace[int64_t(c) * n + i];
  if (p.bias != nullptr) v += p.bias[i % p.n_out];
  p.y[i] = v;
}

__global__ void rows_to_f16_kernel(RowsToF16Params p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n_rows * p.width) return;
  const int64_t r = i / p.width, c = i % p.width;
  const int64_t src = p.rows != nullptr ? p.rows[r] : r;
  p.y[i] = __float2half_rn(p.x[src * p.width + c]);
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES>
Status launch(const GemmRowsParams& p, cudaStream_t stream) {
  using T = Tile<BM, BN, BK, WM, WN, STAGES>;
  auto kernel = gemm_rows_kernel<BM, BN, BK, WM, WN, STAGES>;
  EMBER_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(T::kSmem)), "gemm_rows smem"));
  const int64_t gx = (p.n_out + BN - 1) / BN, gy = (p.n_rows + BM - 1) / BM;
  const int64_t chunks = (p.n_in + kGemmRowsSplitK - 1) / kGemmRowsSplitK;
  if (gx > INT32_MAX || gy > 65535 || chunks > 65535)
    return make_error(ErrorKind::invalid_argument, "gemm_rows: {} x {} x {} is too large", p.n_rows, p.n_out, p.n_in);
  kernel<<<dim3(unsigned(gx), unsigned(gy), unsigned(chunks)), T::kThreads, T::kSmem, stream>>>(p);
  EMBER_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "gemm_rows"));
  if (chunks == 1) return {};
  const int64_t n = p.n_rows * p.n_out;
  constexpr int kReduceThreads = 256;
  reduce_chunks_kernel<<<unsigned((n + kReduceThreads - 1) / kReduceThreads), kReduceThreads, 0, stream>>>(
      p, int(chunks));
  return cuda_status(cudaGetLastError(), "gemm_rows reduce");
}

}  // namespace

Status gemm_rows(const GemmRowsParams& p, cudaStream_t stream) {
  if (p.n_rows < 0 || p.n_out < 0 || p.n_in <= 0)
    return make_error(ErrorKind::invalid_argument, "gemm_rows: bad shape {} x {} x {}", p.n_rows, p.n_out, p.n_in);
  if (p.n_rows == 0 || p.n_out == 0) return {};
  auto a16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  if (p.n_in % 8 != 0 || !a16(p.x) || !a16(p.w) || p.y == nullptr)
    return make_error(ErrorKind::invalid_argument,
                      "gemm_rows: rows of {} halves must be a multiple of 8 and 16-byte aligned", p.n_in);
  const int64_t ws = gemm_rows_workspace(p.n_rows, p.n_out, p.n_in);
  if (ws > 0 && (p.workspace == nullptr || p.workspace_floats < ws))
    return make_error(ErrorKind::invalid_argument, "gemm_rows: K = {} needs a workspace of {} floats (got {})", p.n_in,
                      ws, p.workspace_floats);
  // The tile shape only changes which rows/columns a block owns, never a row's sum order.
  if (p.n_rows <= 16) return launch<16, 64, 64, 16, 16, 4>(p, stream);
  if (p.n_rows <= 128) return launch<64, 64, 64, 32, 32, 4>(p, stream);
  return launch<128, 128, 32, 64, 32, 3>(p, stream);
}

Status rows_to_f16(const RowsToF16Params& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.width <= 0) return {};
  const int64_t n = p.n_rows * p.width;
  constexpr int kThreads = 256;
  if ((n + kThreads - 1) / kThreads > INT32_MAX) return make_error(ErrorKind::invalid_argument, "rows_to_f16: too large");
  rows_to_f16_kernel<<<unsigned((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(p);
  return cuda_status(cudaGetLastError(), "rows_to_f16");
}

}  // namespace ember::cuda
