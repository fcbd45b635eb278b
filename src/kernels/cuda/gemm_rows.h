// y = x · Wᵀ (+ bias) for f16 x and W with fp32 accumulation, on tensor cores, where every
// output row is the same bits whatever other rows share the launch: each output element
// sums each kGemmRowsSplitK-wide chunk of K in the same fixed order (16-wide tensor-core
// steps, K ascending), then adds the chunks' sums in chunk order, for every M and every
// tile shape. The chunking depends on K alone; it gives decode batches (few rows) enough
// blocks to stream the weights. The batched GPU decoder (docs/kv.md) uses it for all
// its matmuls, so a request's tokens come out identical alone or in any batch.
// CPU twin: cpu::matmul on the f16-rounded operands (tests/kernels/gemm_rows_test.cpp).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace ember::cuda {

constexpr int64_t kGemmRowsSplitK = 1024;

// Floats of workspace gemm_rows needs for this shape (0 when K fits one chunk).
inline int64_t gemm_rows_workspace(int64_t n_rows, int64_t n_out, int64_t n_in) {
  const int64_t chunks = (n_in + kGemmRowsSplitK - 1) / kGemmRowsSplitK;
  return chunks > 1 ? chunks * n_rows * n_out : 0;
}

struct GemmRowsParams {
  const __half* x = nullptr;  // [n_rows][n_in], 16-byte aligned rows (n_in % 8 == 0)
  const __half* w = nullptr;  // [n_out][n_in], 16-byte aligned
  const float* bias = nullptr;  // [n_out] or null
  float* y = nullptr;           // [n_rows][n_out]
  int64_t n_rows = 0, n_out = 0, n_in = 0;
  float* workspace = nullptr;   // gemm_rows_workspace(...) floats when K spans several chunks
  int64_t workspace_floats = 0;
};

// Tile shapes are picked by n_rows (small tiles for decode batches, large for prefill);
// none of them changes a row's arithmetic.
Status gemm_rows(const GemmRowsParams& p, cudaStream_t stream);

// The GEMM's input: y[r] = f16(x[rows[r]]) (round to nearest), or y[r] = f16(x[r]) when rows
// is null. Also gathers the rows whose logits are wanted.
struct RowsToF16Params {
  const float* x = nullptr;       // [*][width]
  const int32_t* rows = nullptr;  // device [n_rows] or null
  __half* y = nullptr;            // [n_rows][width]
  int64_t n_rows = 0, width = 0;
};
Status rows_to_f16(const RowsToF16Params& p, cudaStream_t stream);

}  // namespace ember::cuda
