// The mixture-of-experts FFN of the GPU decoder (docs/moe.md "GPU"): the same steps as
// model::MoeFfn (model/moe.h) on the device.
//
//   decode (<= 8 tokens, expert types cuda::moe_gemv reads): router GEMV, moe_route, then
//     one moe_gemv launch for gate+up (gated) and one for down over all (token, slot)
//     pairs, each reading its expert id from device memory, and moe_combine. No host
//     synchronisation: the decoder captures it in its CUDA graph.
//   grouped (prefill, and decode of other types): moe_group on the device, the per-expert
//     row counts copied to the host (one synchronisation per layer), then each expert's
//     matmuls over its gathered rows (cuda::matmul / linear_fp4: dequantize + cuBLAS above
//     8 rows), one gated activation over all rows, moe_combine.
#pragma once
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <memory>

#include "core/status.h"
#include "model/gpu/device_weights.h"
#include "model/spec.h"

namespace ember::model::gpu {

struct GpuMoeContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  int max_batch = 1;  // tokens per forward() call
  bool pdl = true;    // programmatic dependent launch for the expert GEMVs
};

class GpuMoe {
 public:
  static Expected<std::unique_ptr<GpuMoe>> create(const ModelSpec& spec, const DeviceWeights& w,
                                                  const GpuMoeContext& ctx);
  ~GpuMoe();
  GpuMoe(const GpuMoe&) = delete;
  GpuMoe& operator=(const GpuMoe&) = delete;

  // out: [n][n_embd] = Σ_k weight_k · expert_k(h) (+ the shared expert), h: [n][n_embd] the
  // normed FFN input (f32 on the device). Enqueued on the context's stream.
  Status forward(const DeviceMoe& w, const float* h, int n, float* out);
  // True when every decode step (<= 8 tokens) runs without host synchronisation.
  bool decode_graph_safe() const { return graph_safe_; }

 private:
  GpuMoe(const ModelSpec& spec, const GpuMoeContext& ctx) : spec_(spec), ctx_(ctx) {}
  Status allocate(const DeviceWeights& w);
  bool fast(const DeviceMoe& w) const;
  Status decode(const DeviceMoe& w, const float* h, int n, float* out);
  Status grouped(const DeviceMoe& w, const float* h, int n, float* out);
  Status run_experts(const DeviceExperts& ex, const DeviceExperts* up, const float* x, float* y, float* y_up);
  Status router_logits(const DeviceLinear& r, const float* h, int n);
  Status shared_expert(const DeviceMoe& w, const float* h, int n);
  Status linear(const DeviceLinear& l, const float* x, int n, float* y, bool x16_ready = false);

  const ModelSpec& spec_;
  GpuMoeContext ctx_;
  bool graph_safe_ = true;
  DeviceBuffer memory_;
  float* logits_ = nullptr;    // router logits        [B][n_experts]
  int32_t* experts_ = nullptr;  // chosen experts      [B][k]
  float* weights_ = nullptr;    // their weights        [B][k]
  int32_t* offsets_ = nullptr;  // grouped rows per expert [n_experts + 1]
  int32_t* rows_ = nullptr;     // pair of each grouped row [B * k]
  int32_t* where_ = nullptr;    // grouped row of each pair [B * k]
  float* xg_ = nullptr;         // gathered expert input [B * k][n_embd]
  float* gate_ = nullptr;       // expert hidden         [B * k][n_ff_exp]
  float* up_ = nullptr;         //                       [B * k][n_ff_exp]
  float* y_ = nullptr;          // expert outputs        [B * k][n_embd]
  int8_t* xq_ = nullptr;        // int8 activations of the decode GEMVs [8 * k][max(n_embd, n_ff_exp)]
  float* xd_ = nullptr;         // their scales
  float* sh_gate_ = nullptr;    // shared expert hidden  [B][n_ff_shexp]
  float* sh_up_ = nullptr;      //                       [B][n_ff_shexp]
  float* sh_y_ = nullptr;       // shared expert output  [B][n_embd]
  float* sh_logit_ = nullptr;   // its gate logit        [B]
  __half* w16_ = nullptr;       // prefill: one dequantized matrix
  __half* x16_ = nullptr;       // prefill: f16 activations [B * k][max n_in]
  int32_t* host_offsets_ = nullptr;  // pinned [n_experts + 1]
  // The grouped path's current expert rows (run_experts): offsets on the host.
  const int32_t* group_ = nullptr;
};

}  // namespace ember::model::gpu
