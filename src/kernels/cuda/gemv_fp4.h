// y = (x' · Q(W)ᵀ) · scale + (x' · Aᵀ) · Bᵀ + bias, x' = x ⊙ pre_quant_scale, for 4-bit float
// weights (NVFP4: 9-byte blocks of 16, E4M3 block scale; MXFP4: 17-byte blocks of 32,
// E8M0 scale) kept packed on the device. CPU twin: model::linear_forward (model/linear.h),
// i.e. cpu::matmul on the FP4 type plus the low-rank branch.
//
//   Generic weight GEMV (<= 8 tokens per launch; MXFP4, and NVFP4 without an xq/xd
//   workspace): one warp per 4 output rows (sharing the x loads),
//   staging 64 blocks of each row per step through shared memory with 16-byte loads (byte
//   loads where rows are not 16-byte aligned); each lane decodes whole blocks in registers
//   (E2M1 through its f16 bit pattern, E4M3 / E8M0 block scale) and dots them with fp32 x.
//   pre_quant_scale is folded into the decoded weights (x'·w = x·(pqs ⊙ w)).
//   NVFP4 with an xq/xd workspace (the decoder's path, gemv_fp4_q8.cuh): x' is quantized
//   to 16-bit integers per 16 values, kept as two int8 planes (one launch, skipped when
//   xq_ready); each block of 4 warps covers 4 rows with the row split over the warps (many
//   blocks in flight, 16-byte loads staged through shared memory). A lane turns 8 E2M1
//   codes into their doubled values (integers ±{0,1,2,3,4,6,8,12}) with byte permutes of
//   two 8-entry tables, dots them with dp4a (high plane, then the low plane onto 256 × the
//   high sum) and scales each 16-value block sum by E4M3 scale · x scale in fp32.
//   linear_fp4_group runs up to 3 such Linears on one x in one launch (q/k/v; gate/up).
//   Low-rank: a first launch computes t = x' · Aᵀ [n_tokens][rank] into `t` (one block per
//   rank row); the GEMV's epilogue adds Σ_k t[k] · B[row][k] (lanes over k).
//   More tokens: the cuBLAS path below, or (no handle) the GEMV in chunks of 8 tokens.
#pragma once
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "quant/types.h"

namespace ember::cuda {

constexpr int kGemvFp4MaxTokens = 8;

struct LinearFp4Params {
  quant::Type w_type = quant::Type::NVFP4;  // NVFP4 or MXFP4
  const void* w = nullptr;                  // device: n_out rows of w_row_bytes, 16-byte aligned start
  int64_t n_out = 0, n_in = 0, w_row_bytes = 0;
  float scale = 1.0f;                       // per-tensor global scale (multiplier)
  const float* pre_quant_scale = nullptr;   // [n_in] or null
  const float* bias = nullptr;              // [n_out] or null
  // Low-rank branch (rank 0: none): A [rank][n_in], B [n_out][rank], F32 or BF16.
  int rank = 0;
  quant::Type a_type = quant::Type::BF16, b_type = quant::Type::BF16;
  const void* lowrank_a = nullptr;
  const void* lowrank_b = nullptr;
  float* t = nullptr;                       // workspace [kGemvFp4MaxTokens][rank] (rank > 0)
  const float* x = nullptr;                 // device [n_tokens][n_in]
  int64_t n_tokens = 0;
  // NVFP4 decode with integer activations (both set; else the fp32 GEMV): x' quantized per
  // 16 values to 16 bits (d = max|x'| / 32639, q = round(x' / d), kept as two int8 planes)
  // into xq [kGemvFp4MaxTokens][2 · n_in] bytes (16-byte aligned) and xd
  // [kGemvFp4MaxTokens][n_in / 16]. xq_ready: they already hold this x' (n_tokens <=
  // kGemvFp4MaxTokens; the previous Linear read the same x, same pqs).
  int8_t* xq = nullptr;
  float* xd = nullptr;
  bool xq_ready = false;
  float* y = nullptr;                       // device [n_tokens][n_out]
  // Prefill (n_tokens > kGemvFp4MaxTokens with a cuBLAS handle): W (and A) dequantized to
  // f16 in w_f16 (>= max(n_out, rank) * n_in halves) and multiplied by cuBLAS (cuda::matmul,
  // x converted to f16 in x_f16), then one epilogue kernel y = y · scale + t · Bᵀ + bias.
  cublasHandle_t cublas = nullptr;
  __half* w_f16 = nullptr;
  __half* x_f16 = nullptr;  // [n_tokens][n_in]
  float* xs = nullptr;      // [n_tokens][n_in] f32, x ⊙ pre_quant_scale (when pre_quant_scale)
  float* t_rows = nullptr;  // [n_tokens][rank] f32 (rank > 0)
};

// True for the weight types linear_fp4 reads (NVFP4, MXFP4) with rows of n_in.
bool linear_fp4_supported(quant::Type t, int64_t n_in);
Status linear_fp4(const LinearFp4Params& p, cudaStream_t stream);

// Up to kGemvFp4MaxMats NVFP4 Linears reading the same x (q/k/v; gate/up) in one GEMV
// launch on integer activations: the same n_in, x, n_tokens (<= kGemvFp4MaxTokens) and
// pre_quant_scale; the xq/xd workspace and xq_ready of ps[0]. Each keeps its own weights,
// scale, bias, y and low-rank branch (low-rank Linears need distinct t workspaces).
constexpr int kGemvFp4MaxMats = 3;
Status linear_fp4_group(const LinearFp4Params* ps, int n, cudaStream_t stream);

}  // namespace ember::cuda
