// Token embedding gather: dequantizes rows of the token table (any weight type the
// device kernels read, see matmul.h) and scales them. CPU twin: quant::dequantize_row
// per token, as in CpuDecoder::embed.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "quant/types.h"

namespace ember::cuda {

struct EmbedParams {
  quant::Type type = quant::Type::F32;
  const void* table = nullptr;      // device: n_vocab rows of row_bytes
  int64_t row_bytes = 0;
  int64_t n_embd = 0;               // elements per row
  int64_t n_vocab = 0;              // rows in the table (token ids are checked against it)
  const int32_t* tokens = nullptr;  // device: [n_tokens]
  int n_tokens = 0;
  float scale = 1.0f;
  float* out = nullptr;             // device: [n_tokens][n_embd], 16-byte aligned
};

Status embed(const EmbedParams& p, cudaStream_t stream);

}  // namespace ember::cuda
