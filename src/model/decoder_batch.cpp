// CpuDecoder's batched entry point: the tokens of several sequences go through every
// matmul together; attention runs per sequence over the paged KV cache (docs/kv.md).
// Everything but attention is the single-sequence forward's own code.
#include <cmath>

#include "kernels/cpu/paged_attention.h"
#include "model/decoder.h"

namespace ember::model {

Status CpuDecoder::forward_batch(const ForwardBatch& batch, const PagedKv& kv, std::vector<float>& logits) {
  const int n = batch.n_tokens();
  if (n == 0) return make_error(ErrorKind::invalid_argument, "forward_batch: no tokens");
  if (batch.slots.size() != size_t(n) || batch.positions.size() != size_t(n) || batch.seq_of.size() != size_t(n))
    return make_error(ErrorKind::invalid_argument, "forward_batch: the batch is not planned");
  if (int(kv.k.size()) != spec_.n_layers || int(kv.v.size()) != spec_.n_layers)
    return make_error(ErrorKind::invalid_argument, "forward_batch: the KV cache has {} layers, the model {}",
                      kv.k.size(), spec_.n_layers);
  for (int32_t t : batch.tokens)
    if (t < 0 || t >= spec_.n_vocab)
      return make_error(ErrorKind::invalid_argument, "token id {} is out of range [0, {})", t, spec_.n_vocab);
  for (int64_t slot : batch.slots)
    if (slot < 0 || slot >= int64_t(kv.n_blocks) * kv.block_size)
      return make_error(ErrorKind::invalid_argument, "forward_batch: cache slot {} is outside the pool", slot);

  resize_activations(n);
  embed(batch.tokens);
  for (int il = 0; il < spec_.n_layers; ++il) {
    paged_attention_block(il, batch, kv);
    ffn_block(il, n);
    dump("l_out", il, x_.data(), n, spec_.n_embd);
  }
  output_rows(batch.logit_rows, logits);
  return {};
}

void CpuDecoder::paged_attention_block(int il, const ForwardBatch& batch, const PagedKv& kv) {
  const LayerSpec& ls = spec_.layers[size_t(il)];
  const int n = batch.n_tokens(), hd = ls.head_dim, kv_w = ls.n_kv_heads * hd;
  attention_in(il, n, batch.positions.data());

  float* k_pages = kv.k[size_t(il)];  // [n_blocks][block_size][n_kv_heads * head_dim]
  float* v_pages = kv.v[size_t(il)];
  for (int t = 0; t < n; ++t) {
    const size_t slot = size_t(batch.slots[size_t(t)]);
    std::copy_n(&k_[size_t(t) * kv_w], kv_w, k_pages + slot * kv_w);
    std::copy_n(&v_[size_t(t) * kv_w], kv_w, v_pages + slot * kv_w);
  }

  cpu::PagedAttentionParams ap;
  ap.n_tokens = n;
  ap.n_heads = ls.n_heads;
  ap.n_kv_heads = ls.n_kv_heads;
  ap.head_dim = hd;
  ap.window = ls.window;
  ap.scale = spec_.attn_scale > 0.0f ? spec_.attn_scale : 1.0f / std::sqrt(float(hd));
  ap.softcap = spec_.attn_softcap;
  ap.block_size = kv.block_size;
  ap.q = q_.data();
  ap.positions = batch.positions.data();
  ap.seq_of = batch.seq_of.data();
  ap.table_start = batch.table_start.data();
  ap.block_tables = batch.block_tables.data();
  ap.k = k_pages;
  ap.v = v_pages;
  ap.out = attn_.data();  // attn: [n][n_heads * head_dim]
  cpu::paged_attention(ap, pool_);
  attention_out(il, n);
}

}  // namespace ember::model
