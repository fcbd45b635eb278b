// Decode GEMV (1..8 tokens) tuned for memory bandwidth. CPU twin: cpu::matmul
// (kernels/cpu/matmul.h), which also quantizes activations to 8 bits for block formats.
//
//   Block formats (Q4_K, Q6_K, Q8_0): the activations are quantized once per matmul to
//   int8 with one fp32 scale per 32 values (quantize_q8), and the dots run on dp4a.
//   Q4_K blocks (144 bytes, 16-byte aligned) are read in place with 16-byte loads,
//   8 lanes per block; Q6_K (210 bytes) and Q8_0 (34 bytes) rows are only 2-byte
//   aligned inside, so each warp streams its row through shared memory in chunks of
//   whole blocks with coalesced 16-byte loads (the next chunk in flight while the
//   current one is decoded) and decodes from there.
//   F16/BF16: fp32 activations, 16-byte weight loads, 4 in flight per lane.
//
// One launch can cover up to kGemvMaxMats matrices of one type that read the same
// activations (q/k/v; gate/up), and the gated epilogue y = act(gate) · up computes a
// gate row and the matching up row in the same warp (no gate/up round trip).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/elementwise.h"
#include "quant/types.h"

namespace ember::cuda {

constexpr int kGemvMaxMats = 3;
constexpr int kGemvFastMaxTokens = 8;

// x [n_tokens][n_in] f32 -> q [n_tokens][n_in] int8 and d [n_tokens][n_in / 32] with
// x ≈ q · d per group of 32 (d = max|x| / 127, round to nearest). n_in % 32 == 0.
struct QuantizeQ8Params {
  const float* x = nullptr;
  int64_t n_in = 0;
  int n_tokens = 0;
  int8_t* q = nullptr;  // 16-byte aligned
  float* d = nullptr;
};
Status quantize_q8(const QuantizeQ8Params& p, cudaStream_t stream);

enum class GemvEpilogue { none, gated };

struct GemvMat {
  const void* w = nullptr;  // device: n_out rows of w_row_bytes, 16-byte aligned
  float* y = nullptr;       // device: [n_tokens][n_out]
  int64_t n_out = 0;
};

struct GemvBatchParams {
  quant::Type w_type = quant::Type::F16;
  int64_t n_in = 0, w_row_bytes = 0;  // shared by every matrix
  GemvMat mats[kGemvMaxMats];
  int n_mats = 1;
  // gated: mats[0] is the gate, mats[1] the up projection (same n_out); writes
  // act(gate) · up to mats[0].y, and mats[1].y is unused.
  GemvEpilogue epilogue = GemvEpilogue::none;
  GatedAct act = GatedAct::silu;
  const float* x = nullptr;    // f32 activations [n_tokens][n_in] (F16/BF16), 16-byte aligned
  const int8_t* xq = nullptr;  // quantize_q8 output (block formats)
  const float* xd = nullptr;
  int n_tokens = 1;            // 1..kGemvFastMaxTokens
  // Programmatic dependent launch: the kernel may start while the previous kernel in the
  // stream still runs, prefetching its weights into L2, and waits for that kernel before
  // it reads x or writes y (see pdl.cuh).
  bool pdl = false;
  bool pdl_prefetch = true;  // with pdl: prefetch the weight rows into L2 before waiting
  // with pdl: issue the first weight loads into registers, then wait (no L2 prefetch)
  bool pdl_late_wait = false;
  // Q4_K: read blocks in place from global memory (the decoder's default; the gated
  // epilogue then has the gate and up rows' loads in flight together) instead of staging
  // rows through shared memory.
  bool q4k_direct = false;
};

// True when gemv_batch handles this weight type and row length (else use cuda::gemv).
bool gemv_fast_supported(quant::Type t, int64_t n_in);
// True when the type's kernel reads quantize_q8 activations (else f32 x).
bool gemv_fast_uses_q8(quant::Type t);
Status gemv_batch(const GemvBatchParams& p, cudaStream_t stream);

}  // namespace ember::cuda
