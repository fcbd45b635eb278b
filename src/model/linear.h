// y = x · Wᵀ for a Linear with all its extras (NVFP4 global scale, pre_quant_scale,
// low-rank branch, bias) on the CPU. Shared by the decoder's dense layers and the MoE FFN.
#pragma once
#include "core/thread_pool.h"
#include "model/weights.h"

namespace ember::model {

// y: [n][n_out] = (x' · Wᵀ) · scale + (x' · Aᵀ) · Bᵀ + bias, x' = x ⊙ pre_quant_scale; x: [n][n_in].
// Not reentrant per calling thread (cpu::matmul's thread-local buffers).
void linear_forward(const Linear& w, const float* x, int n, float* y, ThreadPool& pool);

}  // namespace ember::model
