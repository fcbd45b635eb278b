#include "model/decoder.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "model/linear.h"
#include "quant/dequantize.h"

namespace ember::model {

void KvCache::init(const ModelSpec& spec, int ctx) {
  n_ctx = ctx;
  k.assign(size_t(spec.n_layers), {});
  v.assign(size_t(spec.n_layers), {});
  for (int il = 0; il < spec.n_layers; ++il) {
    const auto& l = spec.layers[size_t(il)];
    const size_t n = size_t(ctx) * size_t(l.n_kv_heads) * size_t(l.head_dim);
    k[size_t(il)].assign(n, 0.0f);
    v[size_t(il)].assign(n, 0.0f);
  }
}

size_t KvCache::n_bytes() const {
  size_t total = 0;
  for (size_t i = 0; i < k.size(); ++i) total += (k[i].size() + v[i].size()) * sizeof(float);
  return total;
}

CpuDecoder::CpuDecoder(const ModelSpec& spec, const Weights& weights, int n_ctx, ThreadPool& pool)
    : spec_(spec), w_(weights), pool_(pool), moe_(spec, pool) {
  kv_.init(spec, n_ctx);
}

void CpuDecoder::dump(std::string_view name, int il, const float* data, int n, int width) {
  if (dump_) dump_(name, il, data, n, width);
}

void CpuDecoder::matmul(const Linear& w, const float* x, int n, float* y) { linear_forward(w, x, n, y, pool_); }

Status CpuDecoder::forward(std::span<const int32_t> tokens, int pos, bool all_logits, std::vector<float>& logits) {
  const int n = int(tokens.size());
  if (n == 0) return make_error(ErrorKind::invalid_argument, "forward: no tokens");
  if (pos < 0 || int64_t(pos) + n > kv_.n_ctx)
    return make_error(ErrorKind::invalid_argument, "context full: {} tokens at position {} exceed the context size {}",
                      n, pos, kv_.n_ctx);
  for (int32_t t : tokens)
    if (t < 0 || t >= spec_.n_vocab)
      return make_error(ErrorKind::invalid_argument, "token id {} is out of range [0, {})", t, spec_.n_vocab);

  resize_activations(n);
  embed(tokens);
  for (int il = 0; il < spec_.n_layers; ++il) {
    attention_block(il, n, pos);
    ffn_block(il, n);
    dump("l_out", il, x_.data(), n, spec_.n_embd);
  }
  output(n, all_logits, logits);
  return {};
}

void CpuDecoder::resize_activations(int n) {
  const size_t nn = size_t(n);
  x_.resize(nn * size_t(spec_.n_embd));
  h_.resize(x_.size());
  o_.resize(x_.size());
  q_.resize(nn * size_t(spec_.max_q_width()));
  attn_.resize(q_.size());
  k_.resize(nn * size_t(spec_.max_kv_width()));
  v_.resize(k_.size());
  gate_.resize(nn * size_t(spec_.n_ff));
  up_.resize(gate_.size());
}

void CpuDecoder::embed(std::span<const int32_t> tokens) {
  const int d = spec_.n_embd;
  const float scale = spec_.embed_scale ? std::sqrt(float(d)) : 1.0f;
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = x_.data() + t * size_t(d);  // x: [n][n_embd]
    quant::dequantize_row(w_.token_embd.type, w_.token_embd.row(tokens[t]), row, d);
    if (scale != 1.0f)
      for (int i = 0; i < d; ++i) row[i] *= scale;
  }
  dump("inp_embd", -1, x_.data(), int(tokens.size()), d);
}

void CpuDecoder::attention_block(int il, int n, int pos) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const int hd = ls.head_dim, kv_w = ls.n_kv_heads * hd;
  positions_.resize(size_t(n));
  for (int t = 0; t < n; ++t) positions_[size_t(t)] = pos + t;
  attention_in(il, n, positions_.data());

  float* k_cache = kv_.k[size_t(il)].data();  // [n_ctx][n_kv_heads * head_dim]
  float* v_cache = kv_.v[size_t(il)].data();
  std::copy_n(k_.data(), size_t(n) * kv_w, k_cache + size_t(pos) * kv_w);
  std::copy_n(v_.data(), size_t(n) * kv_w, v_cache + size_t(pos) * kv_w);

  cpu::AttentionParams ap;
  ap.n_tokens = n;
  ap.pos0 = pos;
  ap.n_heads = ls.n_heads;
  ap.n_kv_heads = ls.n_kv_heads;
  ap.head_dim = hd;
  ap.window = ls.window;
  ap.scale = spec_.attn_scale > 0.0f ? spec_.attn_scale : 1.0f / std::sqrt(float(hd));
  ap.softcap = spec_.attn_softcap;
  ap.q = q_.data();
  ap.k = k_cache;
  ap.v = v_cache;
  ap.out = attn_.data();  // attn: [n][n_heads * head_dim]
  cpu::attention(ap, pool_);
  attention_out(il, n);
}

// x -> q_, k_, v_ for n tokens at `positions` (rotated, qk-normed when the spec says so).
void CpuDecoder::attention_in(int il, int n, const int32_t* positions) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const LayerWeights& lw = w_.layers[size_t(il)];
  const int d = spec_.n_embd, hd = ls.head_dim;
  const int q_w = ls.n_heads * hd, kv_w = ls.n_kv_heads * hd;

  for (int t = 0; t < n; ++t)  // h: [n][n_embd]
    cpu::rms_norm(&x_[size_t(t) * d], lw.attn_norm.data(), &h_[size_t(t) * d], d, spec_.norm_eps);
  dump("attn_norm", il, h_.data(), n, d);
  matmul(lw.wq, h_.data(), n, q_.data());  // q: [n][n_heads * head_dim]
  matmul(lw.wk, h_.data(), n, k_.data());  // k: [n][n_kv_heads * head_dim]
  if (lw.wv.present()) matmul(lw.wv, h_.data(), n, v_.data());  // v: [n][n_kv_heads * head_dim]
  else std::copy_n(k_.data(), size_t(n) * kv_w, v_.data());      // k_eq_v: v is k's projection

  const cpu::RopeParams rope{hd, hd, ls.rope_base, ls.rope_scale, spec_.rope_style, ls.rope_pairs};
  for (int t = 0; t < n; ++t) {
    float* q = &q_[size_t(t) * q_w];
    float* k = &k_[size_t(t) * kv_w];
    if (spec_.qk_norm) {
      for (int h = 0; h < ls.n_heads; ++h) cpu::rms_norm(q + h * hd, lw.q_norm.data(), q + h * hd, hd, spec_.norm_eps);
      for (int h = 0; h < ls.n_kv_heads; ++h) cpu::rms_norm(k + h * hd, lw.k_norm.data(), k + h * hd, hd, spec_.norm_eps);
    }
    if (spec_.v_norm)
      for (float* v = &v_[size_t(t) * kv_w]; v < &v_[size_t(t + 1) * kv_w]; v += hd) cpu::rms_norm(v, nullptr, v, hd, spec_.norm_eps);
    cpu::rope(q, ls.n_heads, positions[t], rope);
    cpu::rope(k, ls.n_kv_heads, positions[t], rope);
  }
  dump("q_rope", il, q_.data(), n, q_w);
  dump("k_rope", il, k_.data(), n, kv_w);
}

// attn_ -> x += post_norm(attn_ · woᵀ).
void CpuDecoder::attention_out(int il, int n) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const LayerWeights& lw = w_.layers[size_t(il)];
  const int d = spec_.n_embd;
  dump("kqv_out", il, attn_.data(), n, ls.n_heads * ls.head_dim);
  matmul(lw.wo, attn_.data(), n, o_.data());  // o: [n][n_embd]
  if (spec_.post_norms)
    for (int t = 0; t < n; ++t)
      cpu::rms_norm(&o_[size_t(t) * d], lw.post_attn_norm.data(), &o_[size_t(t) * d], d, spec_.norm_eps);
  dump("attn_out", il, o_.data(), n, d);
  for (size_t i = 0; i < size_t(n) * d; ++i) x_[i] += o_[i];
}

void CpuDecoder::ffn_block(int il, int n) {
  const FfnKind kind = spec_.layers[size_t(il)].ffn;
  const LayerWeights& lw = w_.layers[size_t(il)];
  const int d = spec_.n_embd;
  for (int t = 0; t < n; ++t)  // h: [n][n_embd]
    cpu::rms_norm(&x_[size_t(t) * d], lw.ffn_norm.data(), &h_[size_t(t) * d], d, spec_.norm_eps);
  dump("ffn_norm", il, h_.data(), n, d);
  if (kind == FfnKind::moe) moe_.forward(lw.moe, h_.data(), x_.data(), n, o_.data());  // o: [n][n_embd]
  else dense_ffn(il, n);
  if (kind == FfnKind::dense_and_moe) moe_.add_parallel(lw.moe, x_.data(), n, o_.data());
  if (spec_.post_norms)
    for (int t = 0; t < n; ++t)
      cpu::rms_norm(&o_[size_t(t) * d], lw.post_ffn_norm.data(), &o_[size_t(t) * d], d, spec_.norm_eps);
  dump("ffn_out", il, o_.data(), n, d);
  const float scale = lw.layer_out_scale.empty() ? 1.0f : lw.layer_out_scale[0];  // Gemma 4 layer_scalar
  for (size_t i = 0; i < size_t(n) * d; ++i) x_[i] = (x_[i] + o_[i]) * scale;
}

// o_ = down(act(gate(h_)) * up(h_)).
void CpuDecoder::dense_ffn(int il, int n) {
  const LayerWeights& lw = w_.layers[size_t(il)];
  const int ff = spec_.n_ff;
  matmul(lw.w_gate, h_.data(), n, gate_.data());  // gate: [n][n_ff]
  matmul(lw.w_up, h_.data(), n, up_.data());      // up:   [n][n_ff]
  const size_t total = size_t(n) * ff;
  if (spec_.act == Activation::gelu_tanh) cpu::gelu_tanh_mul(gate_.data(), up_.data(), gate_.data(), int64_t(total));
  else cpu::silu_mul(gate_.data(), up_.data(), gate_.data(), int64_t(total));
  dump("ffn_act", il, gate_.data(), n, ff);
  matmul(lw.w_down, gate_.data(), n, o_.data());  // o: [n][n_embd]
}

void CpuDecoder::output(int n, bool all_logits, std::vector<float>& logits) {
  positions_.clear();  // reused here as the list of rows that need logits
  for (int t = all_logits ? 0 : n - 1; t < n; ++t) positions_.push_back(t);
  output_rows(positions_, logits);
}

// logits: [rows.size()][n_vocab] for the given token rows of x.
void CpuDecoder::output_rows(std::span<const int32_t> rows, std::vector<float>& logits) {
  const int d = spec_.n_embd;
  const int n_rows = int(rows.size());
  for (int r = 0; r < n_rows; ++r)  // h: [n_rows][n_embd]
    cpu::rms_norm(&x_[size_t(rows[size_t(r)]) * d], w_.output_norm.data(), &h_[size_t(r) * d], d, spec_.norm_eps);
  dump("result_norm", -1, h_.data(), n_rows, d);
  logits.resize(size_t(n_rows) * spec_.n_vocab);  // logits: [n_rows][n_vocab]
  matmul(w_.output, h_.data(), n_rows, logits.data());
  if (spec_.final_softcap > 0.0f)
    for (float& l : logits) l = spec_.final_softcap * std::tanh(l / spec_.final_softcap);
}

}  // namespace ember::model
