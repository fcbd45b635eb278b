// The batched decoder on one CUDA GPU (docs/kv.md "GPU"): runs a ForwardBatch of many
// sequences over a paged f16 KV cache on the device. Every matmul is cuda::gemm_rows on
// f16 weights (quantized matrices are dequantized to f16 once at load) and attention is
// cuda::paged_attention, so a token's logits are the same bits alone or in any batch.
#pragma once
#include <memory>
#include <string>

#include "core/status.h"
#include "model/batch_decoder.h"
#include "model/spec.h"
#include "model/weights.h"

namespace ember::model::gpu {

struct GpuBatchOptions {
  int device = 0;
  int n_ctx = 4096;      // longest sequence (sizes the attention workspace and block tables)
  int max_tokens = 512;  // tokens per step (the engine's token budget)
  int max_seqs = 16;     // sequences per step
  bool verbose = true;   // print the memory report to stderr
};

// Ok when make_gpu_batch_decoder can run this model (no MoE, no Gemma-4 attention, GGUF
// matrix formats without NVFP4 extras, head_dim even <= 256); else `unsupported`, naming why.
Status gpu_batch_supported(const ModelSpec& spec, const Weights& weights);

// The spec must outlive the decoder; the weights are only read during construction.
Expected<std::unique_ptr<BatchDecoder>> make_gpu_batch_decoder(const ModelSpec& spec, const Weights& weights,
                                                               const GpuBatchOptions& options);

}  // namespace ember::model::gpu
