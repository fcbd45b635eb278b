#include "model/gpu/gpu_moe.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/moe.h"

namespace ember::model::gpu {

namespace {

bool experts_fast(const DeviceExperts& e) { return cuda::moe_gemv_supported(e.type, e.n_in); }

}  // namespace

Expected<std::unique_ptr<GpuMoe>> GpuMoe::create(const ModelSpec& spec, const DeviceWeights& w,
                                                 const GpuMoeContext& ctx) {
  const MoeSpec& m = spec.moe;
  if (m.n_experts > cuda::kMoeMaxExperts || m.n_experts_used > cuda::kMoeMaxTopK)
    return make_error(ErrorKind::unsupported, "the GPU experts support up to {} experts and top-{} ({} has {}, top-{})",
                      cuda::kMoeMaxExperts, cuda::kMoeMaxTopK, spec.arch, m.n_experts, m.n_experts_used);
  if (m.router_input_norm)
    return make_error(ErrorKind::unsupported, "the GPU experts do not support {}'s normed router input yet", spec.arch);
  if (spec.n_embd % 32 != 0 || m.n_ff_exp % 8 != 0)
    return make_error(ErrorKind::unsupported, "the GPU experts need n_embd % 32 == 0 and an expert width % 8 == 0 "
                      "({}: {}, {})", spec.arch, spec.n_embd, m.n_ff_exp);
  auto moe = std::unique_ptr<GpuMoe>(new GpuMoe(spec, ctx));
  for (size_t il = 0; il < spec.layers.size(); ++il)
    if (spec.layers[il].ffn == FfnKind::moe) moe->graph_safe_ = moe->graph_safe_ && moe->fast(w.layers[il].moe);
  EMBER_RETURN_IF_ERROR(moe->allocate(w));
  return moe;
}

GpuMoe::~GpuMoe() {
  if (host_offsets_ != nullptr) cudaFreeHost(host_offsets_);
}

bool GpuMoe::fast(const DeviceMoe& w) const {
  return experts_fast(w.gate) && experts_fast(w.up) && experts_fast(w.down) && w.gate.type == w.up.type;
}

Status GpuMoe::allocate(const DeviceWeights& w) {
  const MoeSpec& m = spec_.moe;
  const size_t B = size_t(ctx_.max_batch), k = size_t(m.n_experts_used), P = B * k, E = size_t(m.n_experts);
  const size_t d = size_t(spec_.n_embd), ff = size_t(m.n_ff_exp), ffs = size_t(m.n_ff_shexp), f = sizeof(float);
  const size_t max_in = std::max({d, ff, ffs});
  int64_t w_elems = 0;
  for (size_t il = 0; il < spec_.layers.size(); ++il) {
    const DeviceMoe& dm = w.layers[il].moe;
    w_elems = std::max({w_elems, dm.max_expert_elems, dm.router.n_in * dm.router.n_out,
                        dm.shexp_gate.n_in * dm.shexp_gate.n_out, dm.shexp_down.n_in * dm.shexp_down.n_out});
  }
  const bool gemm = B > size_t(cuda::kGemvMaxTokens);
  const size_t dec = std::min<size_t>(B, cuda::kGemvFastMaxTokens) * k;  // decode pairs
  DeviceLayout L;
  const size_t logits = L.add(B * E * f), experts = L.add(P * 4), weights = L.add(P * f), offsets = L.add((E + 1) * 4),
               rows = L.add(P * 4), where = L.add(P * 4), xg = L.add(P * d * f), gate = L.add(P * ff * f),
               up = L.add(P * ff * f), y = L.add(P * d * f), xq = L.add(dec * max_in),
               xd = L.add(dec * (max_in / 32 + 1) * f), sh_gate = L.add(B * ffs * f), sh_up = L.add(B * ffs * f),
               sh_y = L.add(ffs > 0 ? B * d * f : 0), sh_logit = L.add(B * f),
               w16 = L.add(gemm ? size_t(w_elems) * 2 : 0), x16 = L.add(gemm ? P * max_in * 2 : 0);
  auto mem = DeviceBuffer::allocate(L.total(), "the MoE buffers");
  if (!mem) return mem.status();
  memory_ = std::move(*mem);
  uint8_t* base = memory_.data();
  auto F = [base](size_t at) { return reinterpret_cast<float*>(base + at); };
  auto I = [base](size_t at) { return reinterpret_cast<int32_t*>(base + at); };
  logits_ = F(logits), experts_ = I(experts), weights_ = F(weights), offsets_ = I(offsets), rows_ = I(rows);
  where_ = I(where), xg_ = F(xg), gate_ = F(gate), up_ = F(up), y_ = F(y), xd_ = F(xd);
  xq_ = reinterpret_cast<int8_t*>(base + xq);
  sh_gate_ = F(sh_gate), sh_up_ = F(sh_up), sh_y_ = F(sh_y), sh_logit_ = F(sh_logit);
  w16_ = gemm ? reinterpret_cast<__half*>(base + w16) : nullptr;
  x16_ = gemm ? reinterpret_cast<__half*>(base + x16) : nullptr;
  return cuda::cuda_status(cudaMallocHost(&host_offsets_, (E + 1) * 4), "pinned MoE offsets");
}

Status GpuMoe::forward(const DeviceMoe& w, const float* h, int n, float* out) {
  if (n < 1 || n > ctx_.max_batch)
    return make_error(ErrorKind::invalid_argument, "MoE forward: {} tokens (at most {})", n, ctx_.max_batch);
  if (n <= cuda::kGemvFastMaxTokens && fast(w)) return decode(w, h, n, out);
  return grouped(w, h, n, out);
}

// logits_: [n][n_experts] = h · routerᵀ in f32 (an F32 router stays f32 above 8 tokens too:
// the top-k must not move with f16 rounding).
Status GpuMoe::router_logits(const DeviceLinear& r, const float* h, int n) {
  if (n <= cuda::kGemvMaxTokens || r.type != quant::Type::F32) return linear(r, h, n, logits_);
  if (cublasSetStream(ctx_.cublas, ctx_.stream) != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorKind::internal, "router: cublasSetStream failed");
  const float alpha = 1.0f, beta = 0.0f;
  const int N = int(r.n_out), K = int(r.n_in), ld = int(r.row_bytes / 4);
  const cublasStatus_t st = cublasGemmEx(ctx_.cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, n, K, &alpha, r.data, CUDA_R_32F,
                                         ld, h, CUDA_R_32F, K, &beta, logits_, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    return make_error(ErrorKind::internal, "router: cublasGemmEx failed ({})", cublasGetStatusString(st));
  if (r.bias != nullptr) return cuda::add_bias({logits_, r.bias, n, r.n_out}, ctx_.stream);
  return {};
}

namespace {

// Routing (both paths): the k experts and weights of every token from the router logits.
Status route(const ModelSpec& spec, const DeviceMoe& w, const float* logits, int n, int32_t* experts, float* weights,
             cudaStream_t stream) {
  const MoeSpec& m = spec.moe;
  cuda::MoeRouteParams p;
  p.logits = logits;
  p.n_tokens = n;
  p.n_experts = m.n_experts;
  p.k = m.n_experts_used;
  p.sigmoid = m.gating == MoeGating::sigmoid;
  p.norm_topk = m.norm_topk;
  p.weights_scale = m.weights_scale;
  p.per_expert_scale = w.per_expert_scale;
  p.experts = experts;
  p.weights = weights;
  return cuda::moe_route(p, stream);
}

}  // namespace

Status GpuMoe::decode(const DeviceMoe& w, const float* h, int n, float* out) {
  const int k = spec_.moe.n_experts_used, d = spec_.n_embd, pairs = n * k;
  EMBER_RETURN_IF_ERROR(router_logits(w.router, h, n));
  EMBER_RETURN_IF_ERROR(route(spec_, w, logits_, n, experts_, weights_, ctx_.stream));
  const auto act = spec_.act == Activation::gelu_tanh ? cuda::GatedAct::gelu_tanh : cuda::GatedAct::silu;
  auto gemv = [&](const DeviceExperts& ex, const DeviceExperts* up, const float* x, int x_rows, int x_div, float* y) {
    cuda::MoeGemvParams p;
    p.w_type = ex.type;
    p.w = ex.data;
    p.w_up = up != nullptr ? up->data : nullptr;
    p.n_in = ex.n_in;
    p.n_out = ex.n_out;
    p.row_bytes = ex.row_bytes;
    p.expert_bytes = ex.expert_bytes;
    p.n_experts = ex.n_experts;
    p.gated = up != nullptr;
    p.act = act;
    p.experts = experts_;
    p.n_pairs = pairs;
    p.x_div = x_div;
    // int8 activations: quantize_q8 runs between moe_route and the GEMV, so the GEMV may
    // overlap it (PDL) and still read ids written before it
    if (cuda::gemv_fast_uses_q8(ex.type)) {
      EMBER_RETURN_IF_ERROR(cuda::quantize_q8({x, ex.n_in, x_rows, xq_, xd_}, ctx_.stream));
      p.xq = xq_;
      p.xd = xd_;
      p.pdl = ctx_.pdl;
    } else {
      p.x = x;
    }
    p.y = y;
    return cuda::moe_gemv(p, ctx_.stream);
  };
  EMBER_RETURN_IF_ERROR(gemv(w.gate, &w.up, h, n, k, gate_));    // gate: [pairs][n_ff_exp] = act(gate) · up
  EMBER_RETURN_IF_ERROR(gemv(w.down, nullptr, gate_, pairs, 1, y_));  // y: [pairs][n_embd]
  EMBER_RETURN_IF_ERROR(shared_expert(w, h, n));
  cuda::MoeCombineParams c;
  c.y = y_;
  c.weights = weights_;
  c.shared = w.shexp_up.data != nullptr ? sh_y_ : nullptr;
  c.shared_gate = w.shexp_gate_inp.data != nullptr ? sh_logit_ : nullptr;
  c.n_tokens = n;
  c.k = k;
  c.n = d;
  c.out = out;
  return cuda::moe_combine(c, ctx_.stream);
}

// y rows [offsets[e], offsets[e + 1]) = expert e (x rows of the same range), for the
// experts with rows; with `up`, also y_up from the up experts, which reuse the f16 copy of
// the expert's rows that the gate matmul made.
Status GpuMoe::run_experts(const DeviceExperts& ex, const DeviceExperts* up, const float* x, float* y, float* y_up) {
  for (int e = 0; e < ex.n_experts; ++e) {
    const int32_t begin = group_[e], m = group_[e + 1] - begin;
    if (m == 0) continue;
    const float* xe = x + int64_t(begin) * ex.n_in;
    EMBER_RETURN_IF_ERROR(linear(ex.expert(e), xe, m, y + int64_t(begin) * ex.n_out));
    if (up != nullptr) EMBER_RETURN_IF_ERROR(linear(up->expert(e), xe, m, y_up + int64_t(begin) * up->n_out, true));
  }
  return {};
}

Status GpuMoe::grouped(const DeviceMoe& w, const float* h, int n, float* out) {
  const int k = spec_.moe.n_experts_used, d = spec_.n_embd, ff = spec_.moe.n_ff_exp, pairs = n * k;
  const int n_exp = spec_.moe.n_experts;
  EMBER_RETURN_IF_ERROR(router_logits(w.router, h, n));
  EMBER_RETURN_IF_ERROR(route(spec_, w, logits_, n, experts_, weights_, ctx_.stream));
  EMBER_RETURN_IF_ERROR(cuda::moe_group({experts_, pairs, n_exp, offsets_, rows_, where_}, ctx_.stream));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMemcpyAsync(host_offsets_, offsets_, size_t(n_exp + 1) * 4,
                                                          cudaMemcpyDeviceToHost, ctx_.stream), "MoE offsets"));
  EMBER_RETURN_IF_ERROR(cuda::moe_gather({h, rows_, pairs, k, d, xg_}, ctx_.stream));  // xg: [pairs][n_embd]
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamSynchronize(ctx_.stream), "MoE offsets"));
  group_ = host_offsets_;
  if (group_[n_exp] != pairs)
    return make_error(ErrorKind::internal, "MoE grouping counted {} rows for {} pairs", group_[n_exp], pairs);
  EMBER_RETURN_IF_ERROR(run_experts(w.gate, &w.up, xg_, gate_, up_));  // gate, up: [pairs][n_ff_exp] (grouped rows)
  const auto act = spec_.act == Activation::gelu_tanh ? cuda::GatedAct::gelu_tanh : cuda::GatedAct::silu;
  EMBER_RETURN_IF_ERROR(cuda::gated_act({gate_, up_, gate_, int64_t(pairs) * ff, act}, ctx_.stream));
  EMBER_RETURN_IF_ERROR(run_experts(w.down, nullptr, gate_, y_, nullptr));  // y: [pairs][n_embd] (grouped rows)
  EMBER_RETURN_IF_ERROR(shared_expert(w, h, n));
  cuda::MoeCombineParams c;
  c.y = y_;
  c.where = where_;
  c.weights = weights_;
  c.shared = w.shexp_up.data != nullptr ? sh_y_ : nullptr;
  c.shared_gate = w.shexp_gate_inp.data != nullptr ? sh_logit_ : nullptr;
  c.n_tokens = n;
  c.k = k;
  c.n = d;
  c.out = out;
  return cuda::moe_combine(c, ctx_.stream);
}

// sh_y: [n][n_embd] = down(act(gate(h)) · up(h)) and sh_logit: [n] = h · gate_inpᵀ.
Status GpuMoe::shared_expert(const DeviceMoe& w, const float* h, int n) {
  if (w.shexp_up.data == nullptr) return {};
  const int64_t ffs = w.shexp_gate.n_out;
  EMBER_RETURN_IF_ERROR(linear(w.shexp_gate, h, n, sh_gate_));
  EMBER_RETURN_IF_ERROR(linear(w.shexp_up, h, n, sh_up_, true));
  if (w.shexp_gate_inp.data != nullptr) EMBER_RETURN_IF_ERROR(linear(w.shexp_gate_inp, h, n, sh_logit_, true));
  const auto act = spec_.act == Activation::gelu_tanh ? cuda::GatedAct::gelu_tanh : cuda::GatedAct::silu;
  EMBER_RETURN_IF_ERROR(cuda::gated_act({sh_gate_, sh_up_, sh_gate_, int64_t(n) * ffs, act}, ctx_.stream));
  return linear(w.shexp_down, sh_gate_, n, sh_y_);
}

// y = x · lᵀ (+ bias) for any matrix type the decoder uploads. x16_ready: x16_ holds this x
// as f16 from the previous call (above 8 rows).
Status GpuMoe::linear(const DeviceLinear& l, const float* x, int n, float* y, bool x16_ready) {
  if (cuda::linear_fp4_supported(l.type, l.n_in)) {
    cuda::LinearFp4Params p;
    p.w_type = l.type;
    p.w = l.data;
    p.n_out = l.n_out;
    p.n_in = l.n_in;
    p.w_row_bytes = l.row_bytes;
    p.scale = l.scale;
    p.bias = l.bias;
    p.x = x;
    p.n_tokens = n;
    p.y = y;
    p.cublas = ctx_.cublas;
    p.w_f16 = w16_;
    p.x_f16 = x16_;
    return cuda::linear_fp4(p, ctx_.stream);  // writes x16_ with its own x'
  }
  cuda::MatmulParams p{l.type, l.data, l.n_out, l.n_in, l.row_bytes, x, n, y, ctx_.cublas, w16_, x16_};
  p.x_f16_ready = x16_ready && n > cuda::kGemvMaxTokens;
  EMBER_RETURN_IF_ERROR(cuda::matmul(p, ctx_.stream));
  if (l.bias != nullptr) EMBER_RETURN_IF_ERROR(cuda::add_bias({y, l.bias, n, l.n_out}, ctx_.stream));
  return {};
}

}  // namespace ember::model::gpu
