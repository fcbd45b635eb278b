#include "model/gpu/gpu_batch_decoder.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embed.h"
#include "kernels/cuda/gemm_rows.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rope.h"
#include "model/gpu/device_weights.h"
#include "model/gpu/gpu_decoder.h"

namespace ember::model::gpu {

namespace {

// A matrix as gemm_rows reads it: f16 rows (the upload's own memory for F16 weights, else
// a dequantized copy), plus the f32 bias.
struct Mat {
  const __half* w = nullptr;  // [n_out][n_in]
  const float* bias = nullptr;
  int64_t n_out = 0, n_in = 0;
};

struct LayerMats {
  Mat wq, wk, wv, wo, gate, up, down;
};

// Device buffers of one step of up to B tokens and R sequences.
struct StepBuffers {
  DeviceBuffer memory;
  float *x = nullptr, *h = nullptr;        // residual stream, normed input  [B][n_embd]
  float *q = nullptr, *attn = nullptr;     // queries, attention output      [B][max_q_width]
  float *k = nullptr, *v = nullptr;        // new keys / values              [B][max_kv_width]
  float* o = nullptr;                      // block output                   [B][n_embd]
  float *gate = nullptr, *up = nullptr;    // FFN                            [B][n_ff]
  __half* x16 = nullptr;                   // the next matmul's input, f16   [B][max n_in]
  float* logits = nullptr;                 //                                [R][n_vocab]
  float* partials = nullptr;               // paged attention workspace
  float* gemm_ws = nullptr;                // gemm_rows chunk sums
  int64_t gemm_ws_floats = 0;
};

// Per-step metadata, laid out identically in pinned host memory and on the device, so
// one copy uploads it all.
struct Meta {
  size_t tokens = 0, positions = 0, seq_of = 0, slots = 0, table_start = 0, block_tables = 0, work = 0,
         logit_rows = 0, bytes = 0;
  int max_table = 0, max_work = 0;
};

// EMBER_BATCH_PROFILE=1: per-step GPU times (events) averaged and printed every 64 steps of
// <= 64 tokens (decode-sized) and every 16 larger steps.
struct StepProfile {
  enum { kStart, kAttnBegin, kAttnEnd, kLayersEnd, kLogitsEnd, kEnd, kCount };
  cudaEvent_t ev[kCount] = {};
  double sum[2][5] = {}, host[2] = {};
  int steps[2] = {};
  bool on = false;
};

struct PinnedDeleter {
  void operator()(void* p) const { cudaFreeHost(p); }
};

class GpuBatchDecoder final : public BatchDecoder {
 public:
  GpuBatchDecoder(const ModelSpec& spec, const GpuBatchOptions& o) : spec_(spec), o_(o) {}
  ~GpuBatchDecoder() override;

  Status init(const Weights& weights);
  size_t kv_bytes_per_token() const override;
  size_t default_kv_bytes(int max_seqs, int n_ctx) const override;
  Status allocate_kv(int n_blocks, int block_size) override;
  Status forward_batch(const ForwardBatch& batch, std::vector<float>& logits) override;
  int max_tokens() const override { return o_.max_tokens; }
  int max_seqs() const override { return o_.max_seqs; }
  const char* device_name() const override { return name_.c_str(); }

 private:
  Status make_f16_weights();
  Status allocate_step();
  Status check_batch(const ForwardBatch& b) const;
  Status upload_batch(const ForwardBatch& b);
  Status linear(const Mat& m, int n, float* y);
  Status to_f16(const float* x, int n, int64_t width, const int32_t* rows = nullptr);
  Status attention_block(int il, int n);
  Status ffn_block(int il, int n);
  Status output(int n_rows, std::vector<float>& logits);

  const ModelSpec& spec_;
  GpuBatchOptions o_;
  std::string name_;
  DeviceWeights w_;
  DeviceBuffer f16_;  // dequantized copies of the non-F16 matrices
  std::vector<LayerMats> layers_;
  Mat output_;
  StepBuffers a_;
  DeviceBuffer kv_, meta_dev_;
  std::vector<__half*> k_pages_, v_pages_;  // per layer [n_blocks * block_size][kv_width]
  int block_size_ = 0, n_blocks_ = 0, max_splits_ = 1, tokens_per_tile_ = 1;
  Meta meta_;
  std::unique_ptr<uint8_t, PinnedDeleter> meta_host_;
  std::vector<cuda::PagedWork> work_;
  cudaStream_t stream_ = nullptr;
  StepProfile prof_;
  void mark(int what) {
    if (prof_.on) cudaEventRecord(prof_.ev[what], stream_);
  }
  void report_profile(int n_tokens, double host_ms);
};

GpuBatchDecoder::~GpuBatchDecoder() {
  for (cudaEvent_t e : prof_.ev)
    if (e != nullptr) cudaEventDestroy(e);
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

bool gemma4_attention(const ModelSpec& spec) {
  return spec.v_norm || spec.layer_out_scale ||
         std::any_of(spec.layers.begin(), spec.layers.end(), [](const LayerSpec& l) { return l.k_eq_v || l.rope_pairs > 0; });
}

Status check_linear(const Linear& l) {
  if (!l.present()) return make_error(ErrorKind::unsupported, "batched GPU decoder: {} is missing", l.name);
  if (l.has_extras())
    return make_error(ErrorKind::unsupported, "batched GPU decoder: {} has NVFP4 extras (scale, low-rank, "
                      "pre_quant_scale), which it does not run yet", l.name);
  const int mult = cuda::weight_row_multiple(l.type);
  if (mult == 0 || l.n_in % mult != 0 || l.n_in % 8 != 0)
    return make_error(ErrorKind::unsupported, "batched GPU decoder: {} ({}, rows of {}) has no f16 conversion",
                      l.name, quant::type_name(l.type), l.n_in);
  return {};
}

}  // namespace

Status gpu_batch_supported(const ModelSpec& spec, const Weights& weights) {
  if (spec.has_moe())
    return make_error(ErrorKind::unsupported, "the batched GPU decoder does not run mixture-of-experts layers yet");
  if (gemma4_attention(spec))
    return make_error(ErrorKind::unsupported, "the batched GPU decoder does not run {}'s attention yet", spec.arch);
  if (spec.n_embd % 8 != 0)
    return make_error(ErrorKind::unsupported, "the batched GPU decoder needs n_embd % 8 == 0 (got {})", spec.n_embd);
  for (const LayerSpec& l : spec.layers)
    if (l.head_dim % 2 != 0 || l.head_dim > 256 || l.n_kv_heads <= 0 || l.n_heads % l.n_kv_heads != 0 ||
        l.n_heads / l.n_kv_heads > cuda::kPagedTileRows)
      return make_error(ErrorKind::unsupported, "the batched GPU decoder needs even head_dim <= 256 and at most {} "
                        "q heads per kv head (got {} / {} / {})", cuda::kPagedTileRows, l.head_dim, l.n_heads,
                        l.n_kv_heads);
  EMBER_RETURN_IF_ERROR(check_linear(weights.output));
  for (const LayerWeights& lw : weights.layers)
    for (const Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      EMBER_RETURN_IF_ERROR(check_linear(*l));
  return {};
}

namespace {

Status GpuBatchDecoder::init(const Weights& weights) {
  EMBER_RETURN_IF_ERROR(gpu_batch_supported(spec_, weights));
  auto name = describe_device(o_.device);
  if (!name) return name.status();
  name_ = fmt::format("cuda:{}", o_.device);
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(o_.device), "cudaSetDevice"));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream"));
  auto w = upload_weights(spec_, weights);
  if (!w) return w.status();
  w_ = std::move(*w);
  EMBER_RETURN_IF_ERROR(make_f16_weights());
  int max_group = 1;
  for (const LayerSpec& l : spec_.layers) max_group = std::max(max_group, l.n_heads / l.n_kv_heads);
  tokens_per_tile_ = cuda::paged_tokens_per_tile(max_group);
  max_splits_ = cuda::paged_max_splits(o_.n_ctx);
  EMBER_RETURN_IF_ERROR(allocate_step());
  if (const char* e = std::getenv("EMBER_BATCH_PROFILE"); e != nullptr && e[0] == '1') {
    prof_.on = true;
    for (cudaEvent_t& ev : prof_.ev) EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaEventCreate(&ev), "event"));
  }
  if (o_.verbose)
    fmt::print(stderr, "gpu batch decoder on {}: weights {:.1f} MiB (+{:.1f} MiB f16 copies), step buffers {:.1f} MiB "
               "({} tokens, {} sequences)\n", *name, double(w_.memory.size()) / (1 << 20),
               double(f16_.size()) / (1 << 20), double(a_.memory.size()) / (1 << 20), o_.max_tokens, o_.max_seqs);
  return {};
}

// Every matrix as f16: F16 uploads are used in place, the rest dequantized once.
Status GpuBatchDecoder::make_f16_weights() {
  std::vector<const DeviceLinear*> all{&w_.output};
  for (const DeviceLayer& l : w_.layers)
    for (const DeviceLinear* d : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) all.push_back(d);
  DeviceLayout layout;
  std::vector<size_t> at(all.size(), 0);
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i]->type != quant::Type::F16) at[i] = layout.add(size_t(all[i]->n_out * all[i]->n_in) * sizeof(__half));
  auto mem = DeviceBuffer::allocate(layout.total(), "f16 copies of the quantized weights");
  if (!mem) return mem.status();
  f16_ = std::move(*mem);
  std::vector<Mat> mats;
  for (size_t i = 0; i < all.size(); ++i) {
    const DeviceLinear& d = *all[i];
    Mat m{static_cast<const __half*>(d.data), d.bias, d.n_out, d.n_in};
    if (d.type != quant::Type::F16) {
      __half* dst = reinterpret_cast<__half*>(f16_.data() + at[i]);
      EMBER_RETURN_IF_ERROR(cuda::dequantize_f16({d.type, d.data, d.n_out, d.n_in, d.row_bytes, dst}, stream_));
      m.w = dst;
    }
    mats.push_back(m);
  }
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamSynchronize(stream_), "dequantize weights"));
  output_ = mats[0];
  for (size_t il = 0; il < w_.layers.size(); ++il) {
    const Mat* m = &mats[1 + 7 * il];
    layers_.push_back({m[0], m[1], m[2], m[3], m[4], m[5], m[6]});
  }
  return {};
}

Status GpuBatchDecoder::allocate_step() {
  const size_t B = size_t(o_.max_tokens), R = size_t(o_.max_seqs), f = sizeof(float);
  int max_heads = 0, max_hd = 0;
  for (const LayerSpec& l : spec_.layers) {
    max_heads = std::max(max_heads, l.n_heads);
    max_hd = std::max(max_hd, l.head_dim);
  }
  const size_t d = size_t(spec_.n_embd), qw = size_t(spec_.max_q_width()), kvw = size_t(spec_.max_kv_width());
  const size_t ff = size_t(spec_.n_ff), max_in = std::max({d, qw, ff});
  DeviceLayout L;
  const size_t x = L.add(B * d * f), h = L.add(B * d * f), q = L.add(B * qw * f), attn = L.add(B * qw * f),
               k = L.add(B * kvw * f), v = L.add(B * kvw * f), o = L.add(B * d * f), gate = L.add(B * ff * f),
               up = L.add(B * ff * f), x16 = L.add(B * max_in * 2), logits = L.add(R * size_t(spec_.n_vocab) * f),
               partials = L.add(cuda::paged_attention_workspace(int(B), max_heads, max_hd, max_splits_) * f);
  int64_t gemm_ws = cuda::gemm_rows_workspace(int64_t(R), output_.n_out, output_.n_in);
  for (const LayerMats& m : layers_)
    for (const Mat* x : {&m.wq, &m.wk, &m.wv, &m.wo, &m.gate, &m.up, &m.down})
      gemm_ws = std::max(gemm_ws, cuda::gemm_rows_workspace(int64_t(B), x->n_out, x->n_in));
  const size_t gws = L.add(size_t(gemm_ws) * f);
  auto mem = DeviceBuffer::allocate(L.total(), "batched step buffers");
  if (!mem) return mem.status();
  a_.memory = std::move(*mem);
  uint8_t* base = a_.memory.data();
  auto F = [base](size_t at) { return reinterpret_cast<float*>(base + at); };
  a_.x = F(x), a_.h = F(h), a_.q = F(q), a_.attn = F(attn), a_.k = F(k), a_.v = F(v), a_.o = F(o);
  a_.gate = F(gate), a_.up = F(up), a_.logits = F(logits), a_.partials = F(partials);
  a_.x16 = reinterpret_cast<__half*>(base + x16);
  a_.gemm_ws = gemm_ws > 0 ? F(gws) : nullptr;
  a_.gemm_ws_floats = gemm_ws;
  return {};
}

size_t GpuBatchDecoder::kv_bytes_per_token() const {
  size_t total = 0;
  for (const LayerSpec& l : spec_.layers) total += 2 * size_t(l.n_kv_heads) * size_t(l.head_dim) * sizeof(__half);
  return total;
}

// Room for max_seqs full contexts, at most 90% of the free device memory.
size_t GpuBatchDecoder::default_kv_bytes(int max_seqs, int n_ctx) const {
  size_t free_bytes = 0, total = 0;
  if (cudaSetDevice(o_.device) != cudaSuccess || cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  const size_t want = size_t(max_seqs) * size_t(n_ctx) * kv_bytes_per_token();
  return std::min(want, free_bytes / 10 * 9);
}

Status GpuBatchDecoder::allocate_kv(int n_blocks, int block_size) {
  if (n_blocks <= 0 || block_size <= 0 || kv_.size() > 0)
    return make_error(ErrorKind::invalid_argument, "GPU KV cache: {} blocks of {} tokens (allocated once)", n_blocks,
                      block_size);
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(o_.device), "cudaSetDevice"));
  DeviceLayout layout;
  std::vector<size_t> at;
  const size_t slots = size_t(n_blocks) * size_t(block_size);
  for (const LayerSpec& l : spec_.layers) {
    const size_t n = slots * size_t(l.n_kv_heads) * size_t(l.head_dim) * sizeof(__half);
    at.push_back(layout.add(n));
    at.push_back(layout.add(n));
  }
  auto mem = DeviceBuffer::allocate(layout.total(), "the paged KV cache (lower --kv-cache-gb)");
  if (!mem) return mem.status();
  kv_ = std::move(*mem);
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMemset(kv_.data(), 0, kv_.size()), "KV cache memset"));
  for (size_t il = 0; il < spec_.layers.size(); ++il) {
    k_pages_.push_back(reinterpret_cast<__half*>(kv_.data() + at[2 * il]));
    v_pages_.push_back(reinterpret_cast<__half*>(kv_.data() + at[2 * il + 1]));
  }
  block_size_ = block_size;
  n_blocks_ = n_blocks;
  // Metadata of one step: the block tables hold every running sequence's whole context.
  const size_t B = size_t(o_.max_tokens), R = size_t(o_.max_seqs);
  meta_.max_table = int(R) * ((o_.n_ctx + block_size - 1) / block_size);
  meta_.max_work = int(B) * max_splits_;
  DeviceLayout L;
  meta_.tokens = L.add(B * 4), meta_.positions = L.add(B * 4), meta_.seq_of = L.add(B * 4);
  meta_.slots = L.add(B * 8), meta_.table_start = L.add(R * 4), meta_.logit_rows = L.add(R * 4);
  meta_.block_tables = L.add(size_t(meta_.max_table) * 4);
  meta_.work = L.add(size_t(meta_.max_work) * sizeof(cuda::PagedWork));
  meta_.bytes = L.total();
  auto md = DeviceBuffer::allocate(meta_.bytes, "step metadata");
  if (!md) return md.status();
  meta_dev_ = std::move(*md);
  uint8_t* pinned = nullptr;
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMallocHost(&pinned, meta_.bytes), "pinned step metadata"));
  meta_host_.reset(pinned);
  if (o_.verbose)
    fmt::print(stderr, "gpu KV cache: {} blocks of {} tokens, {:.1f} MiB (f16)\n", n_blocks, block_size,
               double(kv_.size()) / (1 << 20));
  return {};
}

Status GpuBatchDecoder::check_batch(const ForwardBatch& b) const {
  const int n = b.n_tokens();
  if (kv_.size() == 0) return make_error(ErrorKind::internal, "forward_batch: the KV cache is not allocated");
  if (n == 0) return make_error(ErrorKind::invalid_argument, "forward_batch: no tokens");
  if (b.slots.size() != size_t(n) || b.positions.size() != size_t(n) || b.seq_of.size() != size_t(n))
    return make_error(ErrorKind::invalid_argument, "forward_batch: the batch is not planned");
  if (n > o_.max_tokens || b.n_seqs() > o_.max_seqs || int(b.logit_rows.size()) > o_.max_seqs ||
      int(b.block_tables.size()) > meta_.max_table)
    return make_error(ErrorKind::invalid_argument, "forward_batch: {} tokens of {} sequences exceed the GPU step "
                      "({} tokens, {} sequences)", n, b.n_seqs(), o_.max_tokens, o_.max_seqs);
  for (int32_t t : b.tokens)
    if (t < 0 || t >= spec_.n_vocab)
      return make_error(ErrorKind::invalid_argument, "token id {} is out of range [0, {})", t, spec_.n_vocab);
  for (int32_t p : b.positions)
    if (p < 0 || p >= o_.n_ctx)
      return make_error(ErrorKind::invalid_argument, "forward_batch: position {} is outside the context {}", p,
                        o_.n_ctx);
  for (int64_t slot : b.slots)
    if (slot < 0 || slot >= int64_t(n_blocks_) * block_size_)
      return make_error(ErrorKind::invalid_argument, "forward_batch: cache slot {} is outside the pool", slot);
  for (int32_t id : b.block_tables)
    if (id < 0 || id >= n_blocks_)
      return make_error(ErrorKind::invalid_argument, "forward_batch: block id {} is outside the pool", id);
  return {};
}

Status GpuBatchDecoder::upload_batch(const ForwardBatch& b) {
  cuda::plan_paged_work(b.positions.data(), b.seq_of.data(), b.n_tokens(), tokens_per_tile_, work_);
  if (int(work_.size()) > meta_.max_work)
    return make_error(ErrorKind::internal, "forward_batch: {} attention work items", work_.size());
  uint8_t* host = meta_host_.get();
  auto put = [host](size_t at, const auto& v) { std::memcpy(host + at, v.data(), v.size() * sizeof(v[0])); };
  put(meta_.tokens, b.tokens);
  put(meta_.positions, b.positions);
  put(meta_.seq_of, b.seq_of);
  put(meta_.slots, b.slots);
  put(meta_.table_start, b.table_start);
  put(meta_.logit_rows, b.logit_rows);
  put(meta_.block_tables, b.block_tables);
  put(meta_.work, work_);
  return cuda::cuda_status(
      cudaMemcpyAsync(meta_dev_.data(), host, meta_.bytes, cudaMemcpyHostToDevice, stream_), "step upload");
}

void GpuBatchDecoder::report_profile(int n_tokens, double host_ms) {
  const int k = n_tokens <= 64 ? 0 : 1;
  float ms[5] = {};
  const int from[5] = {StepProfile::kStart, StepProfile::kAttnBegin, StepProfile::kStart, StepProfile::kLayersEnd,
                       StepProfile::kLogitsEnd};
  const int to[5] = {StepProfile::kEnd, StepProfile::kAttnEnd, StepProfile::kLayersEnd, StepProfile::kLogitsEnd,
                     StepProfile::kEnd};
  for (int i = 0; i < 5; ++i) cudaEventElapsedTime(&ms[i], prof_.ev[from[i]], prof_.ev[to[i]]);
  for (int i = 0; i < 5; ++i) prof_.sum[k][i] += ms[i];
  prof_.host[k] += host_ms;
  if (++prof_.steps[k] % (k == 0 ? 64 : 16) != 0) return;
  const double n = prof_.steps[k];
  fmt::print(stderr, "profile ({} steps {} 64 tokens): host {:.2f} ms, gpu {:.2f} ms = layers {:.2f} (attention of "
             "layer 0: {:.3f}) + lm_head {:.2f} + logits download {:.2f}\n", prof_.steps[k], k == 0 ? "<=" : ">",
             prof_.host[k] / n, prof_.sum[k][0] / n, prof_.sum[k][2] / n, prof_.sum[k][1] / n, prof_.sum[k][3] / n,
             prof_.sum[k][4] / n);
}

Status GpuBatchDecoder::forward_batch(const ForwardBatch& batch, std::vector<float>& logits) {
  const auto t0 = std::chrono::steady_clock::now();
  EMBER_RETURN_IF_ERROR(check_batch(batch));
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaSetDevice(o_.device), "cudaSetDevice"));
  EMBER_RETURN_IF_ERROR(upload_batch(batch));
  mark(StepProfile::kStart);
  const int n = batch.n_tokens(), d = spec_.n_embd;
  const float scale = spec_.embed_scale ? std::sqrt(float(d)) : 1.0f;
  const DeviceLinear& te = w_.token_embd;
  const auto* tokens = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.tokens);
  EMBER_RETURN_IF_ERROR(cuda::embed({te.type, te.data, te.row_bytes, d, te.n_out, tokens, n, scale, a_.x}, stream_));
  EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.x, w_.layers[0].attn_norm, a_.h, n, d, spec_.norm_eps}, stream_));
  for (int il = 0; il < spec_.n_layers; ++il) {
    EMBER_RETURN_IF_ERROR(attention_block(il, n));
    EMBER_RETURN_IF_ERROR(ffn_block(il, n));
  }
  mark(StepProfile::kLayersEnd);
  EMBER_RETURN_IF_ERROR(output(int(batch.logit_rows.size()), logits));
  mark(StepProfile::kEnd);
  // the pinned metadata is rewritten by the next step: wait for this one
  EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaStreamSynchronize(stream_), "forward_batch"));
  if (prof_.on)
    report_profile(n, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return {};
}

Status GpuBatchDecoder::to_f16(const float* x, int n, int64_t width, const int32_t* rows) {
  return cuda::rows_to_f16({x, rows, a_.x16, n, width}, stream_);
}

// y = x16 · mᵀ (+ bias): x16 holds the input as f16 (to_f16)
Status GpuBatchDecoder::linear(const Mat& m, int n, float* y) {
  return cuda::gemm_rows({a_.x16, m.w, m.bias, y, n, m.n_out, m.n_in, a_.gemm_ws, a_.gemm_ws_floats}, stream_);
}

Status GpuBatchDecoder::attention_block(int il, int n) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const DeviceLayer& lw = w_.layers[size_t(il)];
  const LayerMats& m = layers_[size_t(il)];
  const int d = spec_.n_embd, hd = ls.head_dim, q_w = ls.n_heads * hd, kv_w = ls.n_kv_heads * hd;
  const float eps = spec_.norm_eps;
  const auto* positions = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.positions);
  EMBER_RETURN_IF_ERROR(to_f16(a_.h, n, d));
  EMBER_RETURN_IF_ERROR(linear(m.wq, n, a_.q));  // q: [n][n_heads * head_dim]
  EMBER_RETURN_IF_ERROR(linear(m.wk, n, a_.k));  // k, v: [n][n_kv_heads * head_dim]
  EMBER_RETURN_IF_ERROR(linear(m.wv, n, a_.v));
  if (spec_.qk_norm) {
    EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.q, lw.q_norm, a_.q, int64_t(n) * ls.n_heads, hd, eps}, stream_));
    EMBER_RETURN_IF_ERROR(cuda::rms_norm({a_.k, lw.k_norm, a_.k, int64_t(n) * ls.n_kv_heads, hd, eps}, stream_));
  }
  const bool neox = spec_.rope_style == cpu::RopeStyle::neox;
  EMBER_RETURN_IF_ERROR(
      cuda::rope({a_.q, q_w, positions, n, ls.n_heads, hd, ls.rope_base, ls.rope_scale, neox}, stream_));
  EMBER_RETURN_IF_ERROR(
      cuda::rope({a_.k, kv_w, positions, n, ls.n_kv_heads, hd, ls.rope_base, ls.rope_scale, neox}, stream_));
  const auto* slots = reinterpret_cast<const int64_t*>(meta_dev_.data() + meta_.slots);
  EMBER_RETURN_IF_ERROR(cuda::paged_kv_store(
      {a_.k, a_.v, slots, k_pages_[size_t(il)], v_pages_[size_t(il)], n, kv_w}, stream_));

  cuda::PagedAttentionParams ap;
  ap.n_tokens = n;
  ap.n_heads = ls.n_heads;
  ap.n_kv_heads = ls.n_kv_heads;
  ap.head_dim = hd;
  ap.window = ls.window;
  ap.scale = spec_.attn_scale > 0.0f ? spec_.attn_scale : 1.0f / std::sqrt(float(hd));
  ap.softcap = spec_.attn_softcap;
  ap.block_size = block_size_;
  ap.q = a_.q;
  ap.positions = positions;
  ap.seq_of = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.seq_of);
  ap.table_start = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.table_start);
  ap.block_tables = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.block_tables);
  ap.k = k_pages_[size_t(il)];
  ap.v = v_pages_[size_t(il)];
  ap.out = a_.attn;  // attn: [n][n_heads * head_dim]
  ap.work = reinterpret_cast<const cuda::PagedWork*>(meta_dev_.data() + meta_.work);
  ap.n_work = int(work_.size());
  ap.partials = a_.partials;
  ap.max_splits = max_splits_;
  if (il == 0) mark(StepProfile::kAttnBegin);
  EMBER_RETURN_IF_ERROR(cuda::paged_attention(ap, stream_));
  if (il == 0) mark(StepProfile::kAttnEnd);

  EMBER_RETURN_IF_ERROR(to_f16(a_.attn, n, q_w));
  EMBER_RETURN_IF_ERROR(linear(m.wo, n, a_.o));  // o: [n][n_embd]
  // x += post_norm(o); h = ffn_norm(x)
  const float* post = spec_.post_norms ? lw.post_attn_norm : nullptr;
  return cuda::residual_norm({a_.x, a_.o, post, lw.ffn_norm, a_.h, n, d, eps}, stream_);
}

Status GpuBatchDecoder::ffn_block(int il, int n) {
  const DeviceLayer& lw = w_.layers[size_t(il)];
  const LayerMats& m = layers_[size_t(il)];
  const int d = spec_.n_embd, ff = spec_.n_ff;
  const auto act = spec_.act == Activation::gelu_tanh ? cuda::GatedAct::gelu_tanh : cuda::GatedAct::silu;
  EMBER_RETURN_IF_ERROR(to_f16(a_.h, n, d));
  EMBER_RETURN_IF_ERROR(linear(m.gate, n, a_.gate));  // gate, up: [n][n_ff]
  EMBER_RETURN_IF_ERROR(linear(m.up, n, a_.up));
  EMBER_RETURN_IF_ERROR(cuda::gated_act({a_.gate, a_.up, a_.gate, int64_t(n) * ff, act}, stream_));
  EMBER_RETURN_IF_ERROR(to_f16(a_.gate, n, ff));
  EMBER_RETURN_IF_ERROR(linear(m.down, n, a_.o));  // o: [n][n_embd]
  // x += post_norm(o); h = next norm(x): the next layer's attn_norm or the output norm
  const bool last = il + 1 == spec_.n_layers;
  const float* next = last ? w_.output_norm : w_.layers[size_t(il) + 1].attn_norm;
  const float* post = spec_.post_norms ? lw.post_ffn_norm : nullptr;
  return cuda::residual_norm({a_.x, a_.o, post, next, a_.h, n, d, spec_.norm_eps}, stream_);
}

// logits: [n_rows][n_vocab] of the rows batch.logit_rows names (h is already output-normed)
Status GpuBatchDecoder::output(int n_rows, std::vector<float>& logits) {
  const size_t vocab = size_t(spec_.n_vocab);
  logits.resize(size_t(n_rows) * vocab);
  if (n_rows == 0) {
    mark(StepProfile::kLogitsEnd);
    return {};
  }
  const auto* rows = reinterpret_cast<const int32_t*>(meta_dev_.data() + meta_.logit_rows);
  EMBER_RETURN_IF_ERROR(to_f16(a_.h, n_rows, spec_.n_embd, rows));
  EMBER_RETURN_IF_ERROR(linear(output_, n_rows, a_.logits));
  mark(StepProfile::kLogitsEnd);
  const int64_t n_logits = int64_t(n_rows) * spec_.n_vocab;
  if (spec_.final_softcap > 0.0f)
    EMBER_RETURN_IF_ERROR(cuda::softcap({a_.logits, n_logits, spec_.final_softcap}, stream_));
  return cuda::cuda_status(cudaMemcpyAsync(logits.data(), a_.logits, size_t(n_logits) * sizeof(float),
                                           cudaMemcpyDeviceToHost, stream_), "logits download");
}

}  // namespace

Expected<std::unique_ptr<BatchDecoder>> make_gpu_batch_decoder(const ModelSpec& spec, const Weights& weights,
                                                               const GpuBatchOptions& options) {
  if (options.n_ctx < 1 || options.max_tokens < 1 || options.max_seqs < 1)
    return make_error(ErrorKind::invalid_argument, "GPU batch decoder: context {}, {} tokens and {} sequences per "
                      "step must be positive", options.n_ctx, options.max_tokens, options.max_seqs);
  auto dec = std::make_unique<GpuBatchDecoder>(spec, options);
  EMBER_RETURN_IF_ERROR(dec->init(weights));
  return std::unique_ptr<BatchDecoder>(std::move(dec));
}

}  // namespace ember::model::gpu
