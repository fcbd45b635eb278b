// y = x · Wᵀ on the CPU for every weight format of quant/: the activations are
// quantized once to vec_dot_type(w_type), then output rows are split across threads
// and each weight row is read once and dotted with every activation row.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "quant/types.h"

namespace ember::cpu {

struct MatmulParams {
  quant::Type w_type = quant::Type::F32;
  const void* w = nullptr;  // weight rows, N of them
  int64_t n_out = 0;        // N, rows of the weight = outputs per token
  int64_t n_in = 0;         // K, row length (a multiple of the type's block size)
  int64_t w_row_bytes = 0;  // stride between weight rows in bytes
  const float* x = nullptr;  // activations [n_tokens][n_in]
  int64_t n_tokens = 0;      // M
  float* y = nullptr;        // outputs [n_tokens][n_out]
  // Quantized weights are dotted with 8-bit activations. By default each activation row
  // is split into an 8-bit part and an 8-bit residual (two integer dots), which matches
  // fp32 math to ~1e-5 relative; fast_activations keeps only the first part (llama.cpp's
  // accuracy, about 2x faster).
  bool fast_activations = false;
};

// Not reentrant per calling thread (it reuses thread-local activation buffers).
void matmul(const MatmulParams& p, ThreadPool& pool);

}  // namespace ember::cpu
