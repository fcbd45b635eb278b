// Model weights on the GPU: every matrix uploaded once in its stored (GGUF block)
// format, norm scales and biases as f32, all in one device allocation.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/spec.h"
#include "model/weights.h"
#include "quant/types.h"

namespace ember::model::gpu {

// Owns one cudaMalloc allocation; move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  static Expected<DeviceBuffer> allocate(size_t bytes, const char* what);
  uint8_t* data() const { return static_cast<uint8_t*>(ptr_); }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Lays out sub-buffers in one allocation, each aligned to 256 bytes.
class DeviceLayout {
 public:
  size_t add(size_t bytes) {
    const size_t at = (total_ + 255) / 256 * 256;
    total_ = at + bytes;
    return at;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

struct DeviceLinear {
  quant::Type type = quant::Type::F32;
  const void* data = nullptr;  // n_out rows of row_bytes, in the file's format
  int64_t n_in = 0, n_out = 0, row_bytes = 0;
  const float* bias = nullptr;  // [n_out] or null
  // NVFP4 / MXFP4 extras (cuda::linear_fp4): y = (x'·Wᵀ)·scale + (x'·Aᵀ)·Bᵀ, x' = x ⊙ pqs.
  float scale = 1.0f;
  const float* pre_quant_scale = nullptr;  // [n_in] or null
  int rank = 0;
  quant::Type a_type = quant::Type::F32, b_type = quant::Type::F32;
  const void* lowrank_a = nullptr;  // [rank][n_in]
  const void* lowrank_b = nullptr;  // [n_out][rank]
};

// The n_experts matrices of one expert projection, equally strided in one region
// (cuda::moe_gemv reads expert e at data + e * expert_bytes). Rows are padded to 16 bytes
// when moe_gemv reads the type; row_bytes is the stride.
struct DeviceExperts {
  quant::Type type = quant::Type::F32;
  const uint8_t* data = nullptr;
  int64_t n_in = 0, n_out = 0, row_bytes = 0, expert_bytes = 0;
  int n_experts = 0;
  std::vector<float> scale;  // [n_experts] FP4 global scales (multipliers); empty for other types
  DeviceLinear expert(int e) const;  // expert e's matrix as a Linear view
};

// A mixture-of-experts FFN (docs/moe.md): router, routed experts, optional shared expert.
struct DeviceMoe {
  DeviceLinear router;  // [n_experts][n_embd]
  DeviceExperts gate, up, down;
  DeviceLinear shexp_gate, shexp_up, shexp_down, shexp_gate_inp;
  const float* per_expert_scale = nullptr;  // [n_experts] or null
  int64_t max_expert_elems = 0;  // largest expert n_in * n_out (the prefill f16 workspace)
};

struct DeviceLayer {
  const float *attn_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr, *post_attn_norm = nullptr;
  const float *ffn_norm = nullptr, *post_ffn_norm = nullptr;
  DeviceLinear wq, wk, wv, wo, w_gate, w_up, w_down;
  DeviceMoe moe;  // FfnKind::moe layers
};

struct DeviceWeights {
  DeviceBuffer memory;
  DeviceLinear token_embd, output;  // output shares token_embd's memory when tied
  const float* output_norm = nullptr;
  std::vector<DeviceLayer> layers;
  int64_t max_matrix_elems = 0;  // largest n_in * n_out of a non-f16 matrix (the f16 GEMM workspace)
  int64_t max_n_in = 0;
  int max_rank = 0;  // largest low-rank branch (the linear_fp4 t workspace)
  bool any_pre_quant_scale = false;  // some FP4 Linear scales its input (the prefill xs workspace)
};

// Checks every matrix has a device kernel, then uploads (synchronously).
Expected<DeviceWeights> upload_weights(const ModelSpec& spec, const Weights& w);

}  // namespace ember::model::gpu
