#include "model/gpu/gpu_decoder.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embed.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope.h"
#include "model/gpu/device_weights.h"
#include "model/gpu/gpu_moe.h"

namespace ember::model::gpu {

namespace {

constexpr int kMaxSplits = 32;  // decode attention: most slices per query row and head

// Activation buffers for one step of up to B = max_batch tokens, in one allocation.
struct Activations {
  DeviceBuffer memory;
  float* x = nullptr;       // residual stream      [B][n_embd]
  float* h = nullptr;       // normed input         [B][n_embd]
  float* q = nullptr;       // queries              [B][max_q_width]
  float* k = nullptr;       // new keys             [B][max_kv_width]
  float* v = nullptr;       // new values           [B][max_kv_width]
  float* attn = nullptr;    // attention output     [B][max_q_width]
  float* o = nullptr;       // block output         [B][n_embd]
  float* gate = nullptr;    // FFN                  [B][n_ff]
  float* up = nullptr;      //                      [B][n_ff]
  float* logits = nullptr;  //                      [B][n_vocab]
  float* attn_ws = nullptr;  // decode attention partials
  __half* w_f16 = nullptr;   // dequantized weight for cuBLAS  [max n_out * n_in]
  __half* x_f16 = nullptr;   // activations for cuBLAS         [B][max n_in]
  int8_t* xq = nullptr;      // int8 activations for the gemv  [8][max n_in]
  float* xd = nullptr;       // their scales                   [8][max n_in / 32]
  float* lowrank_t = nullptr;  // x'·Aᵀ of an FP4 linear       [max(B, 8)][max rank]
  float* xs = nullptr;         // FP4 prefill x ⊙ pqs            [B][max n_in] (when some pqs)
  int* attn_counters = nullptr;  // decode attention: [8][max heads], kept zero between steps
  int32_t* tokens = nullptr;     // [B]
  int32_t* positions = nullptr;  // [B]
};

struct PinnedDeleter {
  void operator()(void* p) const { cudaFreeHost(p); }
};

// One matrix of a projection group: y = x · wᵀ.
struct Proj {
  const DeviceLinear* w;
  float* y;
};

class GpuDecoder final : public Decoder {
 public:
  GpuDecoder(const ModelSpec& spec, const GpuDecoderOptions& o) : spec_(spec), device_(o.device), n_ctx_(o.n_ctx),
      max_batch_(std::min(o.max_batch, o.n_ctx)) {}
  ~GpuDecoder() override;

  Status init(const Weights& weights, bool verbose);
  Status forward(std::span<const int32_t> tokens, int pos, bool all_logits, std::vector<float>& logits) override;
  int n_ctx() const override { return n_ctx_; }
  void set_dump(DumpFn fn) override { dump_ = std::move(fn); }

 private:
  Status allocate_kv();
  Status allocate_activations();
  Status step(const int32_t* tokens, int n, int pos, bool all_logits, float* logits_host);
  Status attention_block(int il, int n, int pos);
  Status ffn_block(int il, int n);
  Status output(int n, bool all_logits, float* logits_host);
  // fp4_q8: within one project() group, whether xq/xd hold x quantized for linear_fp4
  Status matmul(const DeviceLinear& w, const float* x, int n, float* y, bool* fp4_q8 = nullptr);
  cuda::LinearFp4Params fp4_params(const DeviceLinear& w, const float* x, int n, float* y) const;
  size_t lowrank_t_stride() const {  // floats of one Linear's t slot in a_.lowrank_t
    return std::max<size_t>(size_t(max_batch_), cuda::kGemvFp4MaxTokens) * size_t(std::max(w_.max_rank, 1));
  }
  const float* x_f16_of_ = nullptr;  // a_.x_f16 holds this input as f16 (within one project() group)
  Status project(std::initializer_list<Proj> group, const float* x, int n, bool x_q8_ready = false);
  Status residual(const float* post, const float* next_norm, const DeviceLinear* consumer, int n);
  Status bind_input(cuda::GemvBatchParams& p, const float* x, bool& quantized);
  Status run_graph(const int32_t* token, int pos, float* logits_host);
  Status dump(std::string_view name, int il, const float* data, int n, int width);

  const ModelSpec& spec_;
  int device_, n_ctx_, max_batch_;
  DeviceWeights w_;
  std::unique_ptr<GpuMoe> moe_;  // the MoE layers' FFN (model/gpu/gpu_moe.h), when the model has experts
  DeviceBuffer kv_;
  std::vector<__half*> k_cache_, v_cache_;  // per layer [n_ctx][n_kv_heads * head_dim]
  Activations a_;
  std::unique_ptr<int32_t, PinnedDeleter> staging_;  // host [2][B]: tokens, positions
  std::unique_ptr<float, PinnedDeleter> logits_pinned_;  // host [n_vocab]: logits of a graph step
  cudaGraphExec_t graph_ = nullptr;  // one single-token decode step, replayed at any position
  bool use_graph_ = true;
  bool capturing_ = false;
  // gemv launches overlap the previous kernel (programmatic dependent launch) and wait for
  // it after their first weight loads (EMBER_CUDA_PDL=3, the default; 0 off, 1/2 older modes)
  bool pdl_ = true;
  bool pdl_prefetch_ = false;
  bool pdl_late_wait_ = true;
  bool q4k_direct_ = true;  // Q4_K gemv reads blocks in place (EMBER_GEMV_Q4K_DIRECT=0: staged in smem)
  bool h_q8_ready_ = false;  // xq/xd hold the int8 copy of h written by the last residual()
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DumpFn dump_;
  std::vector<float> dump_host_;
};

GpuDecoder::~GpuDecoder() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Status check_spec(const ModelSpec& spec) {
  for (const LayerSpec& l : spec.layers)
    if (l.head_dim % 2 != 0 || l.head_dim > cuda::kAttentionMaxHeadDim)
      return make_error(ErrorKind::unsupported, "CUDA attention supports even head_dim <= {}, the model has {}",
                        cuda::kAttentionMaxHeadDim, l.head_dim);
  if (spec.n_embd % 8 != 0)
    return make_error(ErrorKind::unsupported, "CUDA decoder needs n_embd to be a multiple of 8 (the model has {})",
                      spec.n_embd);
  return {};
}

Status GpuDecoder::init(const Weights& weights, bool verbose) {
  EMBER_RETURN_IF_ERROR(check_spec(spec_));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(device_), "cudaSetDevice"));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"));
  if (cublasCreate(&cublas_) != CUBLAS_STATUS_SUCCESS) {
    cublas_ = nullptr;
    return make_error(ErrorKind::internal, "cublasCreate failed");
  }
  auto w = upload_weights(spec_, weights);
  if (!w) return w.status();
  w_ = std::move(*w);
  EMBER_RETURN_IF_ERROR(allocate_kv());
  EMBER_RETURN_IF_ERROR(allocate_activations());
  int32_t* pinned = nullptr;
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMallocHost(&pinned, sizeof(int32_t) * 2 * size_t(max_batch_)),
                                          "pinned staging buffer"));
  staging_.reset(pinned);
  float* pinned_logits = nullptr;
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMallocHost(&pinned_logits, sizeof(float) * size_t(spec_.n_vocab)),
                                          "pinned logits buffer"));
  logits_pinned_.reset(pinned_logits);
  if (const char* g = std::getenv("EMBER_CUDA_GRAPH"); g != nullptr && g[0] == '0') use_graph_ = false;
  if (const char* g = std::getenv("EMBER_CUDA_PDL"); g != nullptr && g[0] >= '0' && g[0] <= '3') {
    pdl_ = g[0] != '0';
    pdl_prefetch_ = g[0] == '1';  // 2: overlap the launch only
    pdl_late_wait_ = g[0] == '3';  // 3: first weight loads into registers, then wait
  }
  if (const char* g = std::getenv("EMBER_GEMV_Q4K_DIRECT"); g != nullptr && (g[0] == '0' || g[0] == '1'))
    q4k_direct_ = g[0] == '1';
  if (spec_.has_moe()) {
    auto moe = GpuMoe::create(spec_, w_, {stream_, cublas_, max_batch_, pdl_});
    if (!moe) return moe.status();
    moe_ = std::move(*moe);
    if (!moe_->decode_graph_safe()) use_graph_ = false;  // its grouped path synchronises with the host
  }
  if (verbose)
    fmt::print(stderr, "gpu memory: weights {:.1f} MiB, kv cache {:.1f} MiB (f16, {} tokens), workspace {:.1f} MiB "
               "({} tokens per step)\n", double(w_.memory.size()) / (1 << 20), double(kv_.size()) / (1 << 20),
               n_ctx_, double(a_.memory.size()) / (1 << 20), max_batch_);
  return {};
}

Status GpuDecoder::allocate_kv() {
  DeviceLayout layout;
  std::vector<size_t> at;
  for (const LayerSpec& l : spec_.layers) {
    const size_t n = size_t(n_ctx_) * size_t(l.n_kv_heads) * size_t(l.head_dim);
    at.push_back(layout.add(n * sizeof(__half)));
    at.push_back(layout.add(n * sizeof(__half)));
  }
  auto mem = DeviceBuffer::allocate(layout.total(), "the KV cache");
  if (!mem) return mem.status();
  kv_ = std::move(*mem);
  for (size_t il = 0; il < spec_.layers.size(); ++il) {
    k_cache_.push_back(reinterpret_cast<__half*>(kv_.data() + at[2 * il]));
    v_cache_.push_back(reinterpret_cast<__half*>(kv_.data() + at[2 * il + 1]));
  }
  return {};
}

Status GpuDecoder::allocate_activations() {
  const size_t B = size_t(max_batch_), f = sizeof(float);
  int max_heads = 0, max_hd = 0;
  for (const LayerSpec& l : spec_.layers) {
    max_heads = std::max(max_heads, l.n_heads);
    max_hd = std::max(max_hd, l.head_dim);
  }
  const size_t d = size_t(spec_.n_embd), qw = size_t(spec_.max_q_width()), kvw = size_t(spec_.max_kv_width());
  const size_t ff = size_t(spec_.n_ff), vocab = size_t(spec_.n_vocab);
  const size_t max_in = std::max<size_t>(size_t(w_.max_n_in), std::max(ff, qw));
  DeviceLayout L;
  const size_t x = L.add(B * d * f), h = L.add(B * d * f), q = L.add(B * qw * f), k = L.add(B * kvw * f),
               v = L.add(B * kvw * f), attn = L.add(B * qw * f), o = L.add(B * d * f), gate = L.add(B * ff * f),
               up = L.add(B * ff * f), logits = L.add(B * vocab * f),
               ws = L.add(cuda::attention_decode_workspace(cuda::kGemvMaxTokens, max_heads, max_hd, kMaxSplits) * f);
  // The cuBLAS path only runs for steps of more than kGemvMaxTokens tokens.
  const bool gemm = max_batch_ > cuda::kGemvMaxTokens;
  const size_t w16 = L.add(gemm ? size_t(w_.max_matrix_elems) * 2 : 0), x16 = L.add(gemm ? B * max_in * 2 : 0);
  const size_t gv = std::min<size_t>(B, cuda::kGemvFastMaxTokens);
  // linear_fp4 keeps 2 bytes per value in xq and a scale per 16 in xd
  const size_t xq = L.add(gv * max_in * 2), xd = L.add(gv * (max_in / 16 + 1) * f);
  const size_t counters = L.add(size_t(cuda::kGemvMaxTokens) * size_t(max_heads) * sizeof(int));
  const size_t tok = L.add(B * 4), pos = L.add(B * 4);
  // x'·Aᵀ of FP4 linears: one slot per Linear of a linear_fp4_group launch
  const size_t lr_t = L.add(size_t(cuda::kGemvFp4MaxMats) * lowrank_t_stride() * f);
  const size_t xs = L.add(gemm && w_.any_pre_quant_scale ? B * max_in * f : 0);  // FP4 prefill x ⊙ pqs
  auto mem = DeviceBuffer::allocate(L.total(), "activations");
  if (!mem) return mem.status();
  a_.memory = std::move(*mem);
  uint8_t* base = a_.memory.data();
  auto F = [base](size_t at) { return reinterpret_cast<float*>(base + at); };
  a_.x = F(x), a_.h = F(h), a_.q = F(q), a_.k = F(k), a_.v = F(v), a_.attn = F(attn), a_.o = F(o);
  a_.gate = F(gate), a_.up = F(up), a_.logits = F(logits), a_.attn_ws = F(ws);
  a_.w_f16 = gemm ? reinterpret_cast<__half*>(base + w16) : nullptr;
  a_.x_f16 = gemm ? reinterpret_cast<__half*>(base + x16) : nullptr;
  a_.xq = reinterpret_cast<int8_t*>(base + xq);
  a_.xd = F(xd);
  a_.lowrank_t = F(lr_t);
  a_.xs = gemm && w_.any_pre_quant_scale ? F(xs) : nullptr;
  a_.attn_counters = reinterpret_cast<int*>(base + counters);
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(
      cudaMemset(a_.attn_counters, 0, size_t(cuda::kGemvMaxTokens) * size_t(max_heads) * sizeof(int)), "memset"));
  a_.tokens = reinterpret_cast<int32_t*>(base + tok);
  a_.positions = reinterpret_cast<int32_t*>(base + pos);
  return {};
}

Status GpuDecoder::forward(std::span<const int32_t> tokens, int pos, bool all_logits, std::vector<float>& logits) {
  const int n = int(tokens.size());
  if (n == 0) return make_error(ErrorKind::invalid_argument, "forward: no tokens");
  if (pos < 0 || int64_t(pos) + n > n_ctx_)
    return make_error(ErrorKind::invalid_argument, "context full: {} tokens at position {} exceed the context size {}",
                      n, pos, n_ctx_);
  for (int32_t t : tokens)
    if (t < 0 || t >= spec_.n_vocab)
      return make_error(ErrorKind::invalid_argument, "token id {} is out of range [0, {})", t, spec_.n_vocab);
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(device_), "cudaSetDevice"));
  const size_t vocab = size_t(spec_.n_vocab);
  logits.resize((all_logits ? size_t(n) : 1) * vocab);
  for (int c0 = 0; c0 < n; c0 += max_batch_) {  // long prompts run in chunks of max_batch tokens
    const int cn = std::min(max_batch_, n - c0);
    const bool last = c0 + cn == n;
    float* dst = all_logits ? logits.data() + size_t(c0) * vocab : (last ? logits.data() : nullptr);
    EMBER_RETURN_IF_ERROR(step(tokens.data() + c0, cn, pos + c0, all_logits, dst));
  }
  return {};
}

Status GpuDecoder::step(const int32_t* tokens, int n, int pos, bool all_logits, float* logits_host) {
  if (n == 1 && use_graph_ && !dump_) return run_graph(tokens, pos, logits_host);
  int32_t* host = staging_.get();
  for (int i = 0; i < n; ++i) {
    host[i] = tokens[i];
    host[max_batch_ + i] = pos + i;
  }
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(
      cudaMemcpyAsync(a_.tokens, host, size_t(n) * 4, cudaMemcpyHostToDevice, stream_), "token upload"));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(
      cudaMemcpyAsync(a_.positions, host + max_batch_, size_t(n) * 4, cudaMemcpyHostToDevice, stream_),
      "position upload"));
  const int d = spec_.n_embd;
  const float scale = spec_.embed_scale ? std::sqrt(float(d)) : 1.0f;
  const DeviceLinear& te = w_.token_embd;
  EMBER_RETURN_IF_ERROR(cuda::embed({te.type, te.data, te.row_bytes, d, te.n_out, a_.tokens, n, scale, a_.x}, stream_));
  EMBER_RETURN_IF_ERROR(dump("inp_embd", -1, a_.x, n, d));  // x: [n][n_embd]
  EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.x, w_.layers[0].attn_norm, a_.h, n, d, spec_.norm_eps}, stream_));
  h_q8_ready_ = false;
  EMBER_RETURN_IF_ERROR(dump("attn_norm", 0, a_.h, n, d));  // h: [n][n_embd]
  for (int il = 0; il < spec_.n_layers; ++il) {
    EMBER_RETURN_IF_ERROR(attention_block(il, n, pos));
    EMBER_RETURN_IF_ERROR(ffn_block(il, n));
  }
  EMBER_RETURN_IF_ERROR(output(n, all_logits, logits_host));
  if (capturing_) return {};  // run_graph launches and waits
  // The staging buffer is reused by the next step: wait for this one's copies.
  return cuda::cuda_status(cudaStreamSynchronize(stream_), "forward");
}

// A single-token step as one CUDA graph, captured on first use. Every kernel reads the
// position from device memory, so the same graph serves every position; the token and
// position are uploaded from the pinned staging buffer by the graph's first copies.
Status GpuDecoder::run_graph(const int32_t* token, int pos, float* logits_host) {
  int32_t* host = staging_.get();
  if (graph_ == nullptr) {
    EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                                            "graph capture"));
    use_graph_ = false;  // step() enqueues normally (and does not wait) while capturing
    capturing_ = true;
    const Status st = step(token, 1, pos, false, logits_pinned_.get());
    use_graph_ = true;
    capturing_ = false;
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (!st.ok()) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      return st;
    }
    EMBER_RETURN_IF_ERROR(cuda::cuda_status(end, "graph capture"));
    const cudaError_t inst = cudaGraphInstantiate(&graph_, graph, 0);
    cudaGraphDestroy(graph);
    EMBER_RETURN_IF_ERROR(cuda::cuda_status(inst, "graph instantiate"));
  }
  host[0] = token[0];
  host[max_batch_] = pos;
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaGraphLaunch(graph_, stream_), "graph launch"));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamSynchronize(stream_), "forward"));
  if (logits_host != nullptr)
    std::memcpy(logits_host, logits_pinned_.get(), sizeof(float) * size_t(spec_.n_vocab));
  return {};
}

// Points the gemv at x: f32 as is, or quantized to int8 into xq/xd (once per `quantized`
// flag, so the matrices of one projection group share it).
Status GpuDecoder::bind_input(cuda::GemvBatchParams& p, const float* x, bool& quantized) {
  if (!cuda::gemv_fast_uses_q8(p.w_type)) {
    p.x = x;
    return {};
  }
  if (!quantized) EMBER_RETURN_IF_ERROR(cuda::quantize_q8({x, p.n_in, p.n_tokens, a_.xq, a_.xd}, stream_));
  quantized = true;
  p.xq = a_.xq;
  p.xd = a_.xd;
  return {};
}

// y_i = x · w_iᵀ for a group of matrices reading the same x: consecutive matrices of one
// type go to one gemv_batch launch; other types and long prompts take cuda::matmul.
Status GpuDecoder::project(std::initializer_list<Proj> group, const float* x, int n, bool x_q8_ready) {
  const Proj* g = group.begin();
  const int count = int(group.size());
  x_f16_of_ = nullptr;  // x may have changed since the last group: convert it again
  bool quantized = x_q8_ready;
  bool fp4_q8 = false;  // xq/xd hold x as linear_fp4 quantizes it (groups of 16)
  // NVFP4 decode without pqs: consecutive ones share one linear_fp4_group launch
  auto fp4_plain = [&](const DeviceLinear& m) {
    return m.type == quant::Type::NVFP4 && cuda::linear_fp4_supported(m.type, m.n_in) &&
           m.pre_quant_scale == nullptr && n <= cuda::kGemvFp4MaxTokens && n <= max_batch_;
  };
  for (int i = 0; i < count;) {
    const DeviceLinear& w = *g[i].w;
    int e = i;
    while (e < count && e - i < cuda::kGemvFp4MaxMats && fp4_plain(*g[e].w) && g[e].w->n_in == w.n_in) ++e;
    if (e - i > 1) {
      cuda::LinearFp4Params ps[cuda::kGemvFp4MaxMats];
      for (int k = i; k < e; ++k) {
        ps[k - i] = fp4_params(*g[k].w, x, n, g[k].y);
        ps[k - i].t = a_.lowrank_t + size_t(k - i) * lowrank_t_stride();  // each its own t
      }
      ps[0].xq = a_.xq;
      ps[0].xd = a_.xd;
      ps[0].xq_ready = fp4_q8;
      EMBER_RETURN_IF_ERROR(cuda::linear_fp4_group(ps, e - i, stream_));
      fp4_q8 = true;      // xq holds x for linear_fp4
      quantized = false;  // not the groups-of-32 copy any more
      i = e;
      continue;
    }
    if (n > cuda::kGemvFastMaxTokens || !cuda::gemv_fast_supported(w.type, w.n_in)) {
      EMBER_RETURN_IF_ERROR(matmul(w, x, n, g[i].y, &fp4_q8));
      if (fp4_q8 || cuda::linear_fp4_supported(w.type, w.n_in)) quantized = false;  // xq overwritten
      ++i;
      continue;
    }
    cuda::GemvBatchParams p;
    p.w_type = w.type;
    p.n_in = w.n_in;
    p.w_row_bytes = w.row_bytes;
    p.n_tokens = n;
    p.pdl = pdl_;
    p.pdl_prefetch = pdl_prefetch_;
    p.pdl_late_wait = pdl_late_wait_;
    p.q4k_direct = q4k_direct_;
    p.n_mats = 0;
    int j = i;
    for (; j < count && p.n_mats < cuda::kGemvMaxMats && g[j].w->type == w.type && g[j].w->n_in == w.n_in; ++j)
      p.mats[p.n_mats++] = {g[j].w->data, g[j].y, g[j].w->n_out};
    EMBER_RETURN_IF_ERROR(bind_input(p, x, quantized));
    fp4_q8 = false;  // xq may now hold the groups-of-32 copy
    EMBER_RETURN_IF_ERROR(cuda::gemv_batch(p, stream_));
    for (int k = i; k < j; ++k)
      if (g[k].w->bias != nullptr)
        EMBER_RETURN_IF_ERROR(cuda::add_bias({g[k].y, g[k].w->bias, n, g[k].w->n_out}, stream_));
    i = j;
  }
  return {};
}

// x += post_norm(o); h = next_norm(x), and for a decode step whose next matmul reads
// int8 activations, the int8 copy of h in xq/xd (saves a quantize_q8 launch).
Status GpuDecoder::residual(const float* post, const float* next_norm, const DeviceLinear* consumer, int n) {
  const int d = spec_.n_embd;
  cuda::ResidualNormParams p{a_.x, a_.o, post, next_norm, a_.h, n, d, spec_.norm_eps};
  h_q8_ready_ = n <= cuda::kGemvFastMaxTokens && cuda::gemv_fast_supported(consumer->type, consumer->n_in) &&
                cuda::gemv_fast_uses_q8(consumer->type) && cuda::residual_norm_q8_supported(d);
  if (h_q8_ready_) {
    p.yq = a_.xq;
    p.yd = a_.xd;
  }
  return cuda::residual_norm(p, stream_);
}

Status GpuDecoder::matmul(const DeviceLinear& w, const float* x, int n, float* y, bool* fp4_q8) {
  // a_.x_f16 holds x as f16 when the previous matmul of this group read the same x through
  // cuBLAS; any other path (FP4 uses the workspace for x' and t) invalidates it
  const bool x16_ready = x == x_f16_of_ && n > cuda::kGemvMaxTokens;
  x_f16_of_ = nullptr;
  if (cuda::linear_fp4_supported(w.type, w.n_in)) {  // NVFP4 / MXFP4 with scale, low-rank, pqs, bias
    cuda::LinearFp4Params p = fp4_params(w, x, n, y);
    if (fp4_q8 != nullptr && n <= cuda::kGemvFp4MaxTokens && n <= max_batch_) {  // integer decode GEMV
      p.xq = a_.xq;
      p.xd = a_.xd;
      p.xq_ready = *fp4_q8 && w.pre_quant_scale == nullptr;
      *fp4_q8 = false;
      EMBER_RETURN_IF_ERROR(cuda::linear_fp4(p, stream_));
      *fp4_q8 = w.type == quant::Type::NVFP4 && w.pre_quant_scale == nullptr;  // xq now holds x (MXFP4: untouched)
      return {};
    }
    return cuda::linear_fp4(p, stream_);
  }
  cuda::MatmulParams p{w.type, w.data, w.n_out, w.n_in, w.row_bytes, x, n, y, cublas_, a_.w_f16, a_.x_f16};
  p.x_f16_ready = x16_ready;
  EMBER_RETURN_IF_ERROR(cuda::matmul(p, stream_));
  x_f16_of_ = n > cuda::kGemvMaxTokens ? x : nullptr;
  if (w.bias != nullptr) EMBER_RETURN_IF_ERROR(cuda::add_bias({y, w.bias, n, w.n_out}, stream_));
  return {};
}

cuda::LinearFp4Params GpuDecoder::fp4_params(const DeviceLinear& w, const float* x, int n, float* y) const {
  cuda::LinearFp4Params p;
  p.w_type = w.type;
  p.w = w.data;
  p.n_out = w.n_out;
  p.n_in = w.n_in;
  p.w_row_bytes = w.row_bytes;
  p.scale = w.scale;
  p.pre_quant_scale = w.pre_quant_scale;
  p.bias = w.bias;
  p.rank = w.rank;
  p.a_type = w.a_type;
  p.b_type = w.b_type;
  p.lowrank_a = w.lowrank_a;
  p.lowrank_b = w.lowrank_b;
  p.t = a_.lowrank_t;
  p.x = x;
  p.n_tokens = n;
  p.y = y;
  p.cublas = cublas_;  // n > 8: dequantize + cuBLAS
  p.w_f16 = a_.w_f16;
  p.x_f16 = a_.x_f16;
  p.xs = a_.xs;
  p.t_rows = a_.lowrank_t;
  return p;
}

Status GpuDecoder::attention_block(int il, int n, int pos) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const DeviceLayer& lw = w_.layers[size_t(il)];
  const int d = spec_.n_embd, hd = ls.head_dim;
  const int q_w = ls.n_heads * hd, kv_w = ls.n_kv_heads * hd;
  const float eps = spec_.norm_eps;
  // q: [n][n_heads * head_dim], k and v: [n][n_kv_heads * head_dim]
  EMBER_RETURN_IF_ERROR(project({{&lw.wq, a_.q}, {&lw.wk, a_.k}, {&lw.wv, a_.v}}, a_.h, n, h_q8_ready_));
  if (spec_.qk_norm) {
    EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.q, lw.q_norm, a_.q, int64_t(n) * ls.n_heads, hd, eps}, stream_));
    EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.k, lw.k_norm, a_.k, int64_t(n) * ls.n_kv_heads, hd, eps}, stream_));
  }
  const bool neox = spec_.rope_style == cpu::RopeStyle::neox;
  __half* k_cache = k_cache_[size_t(il)];  // [n_ctx][n_kv_heads * head_dim]
  __half* v_cache = v_cache_[size_t(il)];
  // rope(q), rope(k), then k and v into the cache rows positions[t], in one launch
  EMBER_RETURN_IF_ERROR(cuda::rope_store({a_.q, a_.k, a_.v, k_cache, v_cache, a_.positions, n, ls.n_heads,
                                          ls.n_kv_heads, hd, ls.rope_base, ls.rope_scale, neox}, stream_));
  EMBER_RETURN_IF_ERROR(dump("q_rope", il, a_.q, n, q_w));
  EMBER_RETURN_IF_ERROR(dump("k_rope", il, a_.k, n, kv_w));
  const bool decode = n <= cuda::kGemvMaxTokens;
  const int32_t* pos_dev = decode ? a_.positions : nullptr;  // device positions: graph-replayable

  cuda::AttentionParams ap;
  ap.n_tokens = n;
  ap.pos0 = pos;
  ap.n_heads = ls.n_heads;
  ap.n_kv_heads = ls.n_kv_heads;
  ap.head_dim = hd;
  ap.window = ls.window;
  ap.scale = spec_.attn_scale > 0.0f ? spec_.attn_scale : 1.0f / std::sqrt(float(hd));
  ap.softcap = spec_.attn_softcap;
  ap.q = a_.q;
  ap.k = k_cache;
  ap.v = v_cache;
  ap.out = a_.attn;  // attn: [n][n_heads * head_dim]
  ap.pos_dev = pos_dev;
  // decode: one launch (the last slice merges), and the int8 copy the o projection reads
  const DeviceLinear& wo = lw.wo;
  const bool attn_q8 = decode && hd % 32 == 0 && cuda::gemv_fast_supported(wo.type, wo.n_in) &&
                       cuda::gemv_fast_uses_q8(wo.type);
  if (decode) ap.counters = a_.attn_counters;
  if (attn_q8) {
    ap.out_q = a_.xq;
    ap.out_d = a_.xd;
  }
  if (decode) EMBER_RETURN_IF_ERROR(cuda::attention_decode(ap, a_.attn_ws, kMaxSplits, stream_));
  else EMBER_RETURN_IF_ERROR(cuda::attention_prefill(ap, stream_));
  EMBER_RETURN_IF_ERROR(dump("kqv_out", il, a_.attn, n, q_w));

  EMBER_RETURN_IF_ERROR(project({{&lw.wo, a_.o}}, a_.attn, n, attn_q8));  // o: [n][n_embd]
  // x += post_norm(o); h = ffn_norm(x)
  EMBER_RETURN_IF_ERROR(residual(spec_.post_norms ? lw.post_attn_norm : nullptr, lw.ffn_norm, &lw.w_gate, n));
  EMBER_RETURN_IF_ERROR(dump("attn_out", il, a_.o, n, d));
  return dump("ffn_norm", il, a_.h, n, d);
}

Status GpuDecoder::ffn_block(int il, int n) {
  const DeviceLayer& lw = w_.layers[size_t(il)];
  const int d = spec_.n_embd, ff = spec_.n_ff;
  const auto act = spec_.act == Activation::gelu_tanh ? cuda::GatedAct::gelu_tanh : cuda::GatedAct::silu;
  const DeviceLinear &g = lw.w_gate, &u = lw.w_up;
  if (spec_.layers[size_t(il)].ffn == FfnKind::moe) {
    EMBER_RETURN_IF_ERROR(moe_->forward(lw.moe, a_.h, n, a_.o));  // o: [n][n_embd], experts (+ shared expert)
  } else if (n <= cuda::kGemvFastMaxTokens && g.type == u.type && g.n_in == u.n_in && cuda::gemv_fast_supported(g.type, g.n_in)
      && g.bias == nullptr && u.bias == nullptr) {
    // gate: [n][n_ff] = act(h · gateᵀ) * (h · upᵀ) in one launch
    cuda::GemvBatchParams p;
    p.w_type = g.type;
    p.n_in = g.n_in;
    p.w_row_bytes = g.row_bytes;
    p.n_tokens = n;
    p.n_mats = 2;
    p.mats[0] = {g.data, a_.gate, g.n_out};
    p.mats[1] = {u.data, a_.up, u.n_out};
    p.epilogue = cuda::GemvEpilogue::gated;
    p.act = act;
    p.pdl = pdl_;
    p.pdl_prefetch = pdl_prefetch_;
    p.pdl_late_wait = pdl_late_wait_;
    p.q4k_direct = q4k_direct_;
    bool quantized = h_q8_ready_;
    EMBER_RETURN_IF_ERROR(bind_input(p, a_.h, quantized));
    EMBER_RETURN_IF_ERROR(cuda::gemv_batch(p, stream_));
  } else {
    EMBER_RETURN_IF_ERROR(project({{&g, a_.gate}, {&u, a_.up}}, a_.h, n, h_q8_ready_));  // gate, up: [n][n_ff]
    EMBER_RETURN_IF_ERROR(cuda::gated_act({a_.gate, a_.up, a_.gate, int64_t(n) * ff, act}, stream_));
  }
  if (spec_.layers[size_t(il)].ffn != FfnKind::moe) {
    EMBER_RETURN_IF_ERROR(dump("ffn_act", il, a_.gate, n, ff));
    EMBER_RETURN_IF_ERROR(project({{&lw.w_down, a_.o}}, a_.gate, n));  // o: [n][n_embd]
  }
  // x += post_norm(o); h = next norm(x): the next layer's attn_norm or the output norm
  const bool last = il + 1 == spec_.n_layers;
  const float* next = last ? w_.output_norm : w_.layers[size_t(il) + 1].attn_norm;
  const DeviceLinear* consumer = last ? &w_.output : &w_.layers[size_t(il) + 1].wq;
  EMBER_RETURN_IF_ERROR(residual(spec_.post_norms ? lw.post_ffn_norm : nullptr, next, consumer, n));
  EMBER_RETURN_IF_ERROR(dump("ffn_out", il, a_.o, n, d));
  EMBER_RETURN_IF_ERROR(dump("l_out", il, a_.x, n, d));
  return last ? Status() : dump("attn_norm", il + 1, a_.h, n, d);
}

Status GpuDecoder::output(int n, bool all_logits, float* logits_host) {
  if (logits_host == nullptr) return {};  // an earlier chunk of a prompt: no logits wanted
  const int d = spec_.n_embd, rows = all_logits ? n : 1;
  const float* h = a_.h + size_t(n - rows) * d;  // h: [rows][n_embd], already output-normed
  EMBER_RETURN_IF_ERROR(dump("result_norm", -1, h, rows, d));
  EMBER_RETURN_IF_ERROR(project({{&w_.output, a_.logits}}, h, rows, h_q8_ready_ && rows == n));  // [rows][n_vocab]
  const int64_t n_logits = int64_t(rows) * spec_.n_vocab;
  if (spec_.final_softcap > 0.0f)
    EMBER_RETURN_IF_ERROR(cuda::softcap({a_.logits, n_logits, spec_.final_softcap}, stream_));
  return cuda::cuda_status(cudaMemcpyAsync(logits_host, a_.logits, size_t(n_logits) * sizeof(float),
                                           cudaMemcpyDeviceToHost, stream_), "logits download");
}

Status GpuDecoder::dump(std::string_view name, int il, const float* data, int n, int width) {
  if (!dump_) return {};
  dump_host_.resize(size_t(n) * size_t(width));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMemcpyAsync(dump_host_.data(), data, dump_host_.size() * sizeof(float),
                                                          cudaMemcpyDeviceToHost, stream_), "dump"));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamSynchronize(stream_), "dump"));
  dump_(name, il, dump_host_.data(), n, width);
  return {};
}

}  // namespace

Expected<std::string> describe_device(int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  if (device < 0 || device >= count)
    return make_error(ErrorKind::invalid_argument, "CUDA device {} does not exist ({} device(s) found)", device, count);
  cudaDeviceProp prop{};
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"));
  return fmt::format("{} (device {}, sm_{}{}, {:.1f} GiB)", prop.name, device, prop.major, prop.minor,
                     double(prop.totalGlobalMem) / (1 << 30));
}

Expected<std::unique_ptr<Decoder>> make_gpu_decoder(const ModelSpec& spec, const Weights& weights,
                                                    const GpuDecoderOptions& options) {
  auto name = describe_device(options.device);
  if (!name) return name.status();
  if (options.n_ctx < 1 || options.max_batch < 1)
    return make_error(ErrorKind::invalid_argument, "GPU decoder: context {} and batch {} must be positive",
                      options.n_ctx, options.max_batch);
  if (std::any_of(spec.layers.begin(), spec.layers.end(),
                  [](const LayerSpec& l) { return l.ffn == FfnKind::dense_and_moe; }))  // the CPU decoder runs them
    return make_error(ErrorKind::unsupported, "the GPU decoder does not run {}'s dense MLP + experts layers yet",
                      spec.arch);
  const bool gemma4_attention = spec.v_norm || spec.layer_out_scale ||
                                std::any_of(spec.layers.begin(), spec.layers.end(),
                                            [](const LayerSpec& l) { return l.k_eq_v || l.rope_pairs > 0; });
  if (gemma4_attention)
    return make_error(ErrorKind::unsupported, "the GPU decoder does not run {}'s attention yet (v-norm, k = v, "
                      "partial rope, layer scale)", spec.arch);
  auto dec = std::make_unique<GpuDecoder>(spec, options);
  EMBER_RETURN_IF_ERROR(dec->init(weights, options.verbose));
  return std::unique_ptr<Decoder>(std::move(dec));
}

}  // namespace ember::model::gpu
