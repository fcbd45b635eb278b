#include "model/weights.h"

#include <fmt/format.h>

#include "core/progress.h"
#include "quant/dequantize.h"

namespace ember::model {

namespace {

class GgufSource final : public TensorSource {
 public:
  explicit GgufSource(const gguf::File& file) : file_(file) {}
  std::optional<TensorRef> find(std::string_view name) const override {
    const gguf::TensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return std::nullopt;
    return TensorRef{t->type, t->n_dims, t->ne, t->n_elements, t->n_bytes, t->data};
  }
  const std::string& name() const override { return file_.name(); }

 private:
  const gguf::File& file_;
};

class Loader {
 public:
  Loader(const TensorSource& file, Weights& w) : file_(file), w_(w) {}

  Status matrix(const std::string& name, int64_t n_in, int64_t n_out, bool required, Linear& out) {
    const std::optional<TensorRef> t = file_.find(name);
    if (!t) {
      if (!required) return {};
      return make_error(ErrorKind::invalid_file, "{}: missing tensor '{}'", file_.name(), file_.display_name(name));
    }
    if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out)
      return make_error(ErrorKind::invalid_file, "{}: tensor '{}' has shape [{}, {}], expected [{}, {}]",
                        file_.name(), file_.display_name(name), t->ne[0], t->ne[1], n_in, n_out);
    if (!quant::traits(t->type).computable)
      return make_error(ErrorKind::unsupported, "{}: tensor '{}' has type {}, which ember cannot compute yet",
                        file_.name(), file_.display_name(name), quant::type_name(t->type));
    out.name = name;
    out.type = t->type;
    out.data = t->data;
    out.n_in = n_in;
    out.n_out = n_out;
    out.row_bytes = int64_t(t->n_bytes) / n_out;
    w_.n_bytes += t->n_bytes;
    return bias(name, n_out, out);
  }

  Status vector(const std::string& name, int64_t n, bool required, std::vector<float>& out) {
    const std::optional<TensorRef> t = file_.find(name);
    if (!t) {
      if (!required) return {};
      return make_error(ErrorKind::invalid_file, "{}: missing tensor '{}'", file_.name(), file_.display_name(name));
    }
    if (t->n_elements != n || t->ne[0] != n)
      return make_error(ErrorKind::invalid_file, "{}: tensor '{}' has {} elements, expected {}", file_.name(), file_.display_name(name),
                        t->n_elements, n);
    if (!quant::traits(t->type).computable)
      return make_error(ErrorKind::unsupported, "{}: tensor '{}' has unsupported type {}", file_.name(), file_.display_name(name),
                        quant::type_name(t->type));
    out.resize(size_t(n));
    quant::dequantize_row(t->type, t->data, out.data(), n);
    w_.n_bytes += t->n_bytes;
    return {};
  }

  // The n_exp experts' `role` projections ("ffn_gate"), each [n_out][n_in]: slices of the
  // 3-D tensor "<p><role>_exps.weight" [n_exp][n_out][n_in], slices of the fused
  // "<p>ffn_gate_up_exps.weight" [n_exp][2 n_out][n_in] (gate rows first) for ffn_gate /
  // ffn_up, or one tensor per expert "<p><role>.<e>.weight".
  Status experts(const std::string& p, const std::string& role, int64_t n_in, int64_t n_out, int64_t n_exp,
                 std::vector<Linear>& out) {
    out.assign(size_t(n_exp), Linear{});
    std::string name = p + role + "_exps.weight";
    int64_t rows = n_out, first = 0;  // rows per expert in the tensor, first row of ours
    std::optional<TensorRef> t = file_.find(name);
    if (!t && (role == "ffn_gate" || role == "ffn_up")) {
      name = p + "ffn_gate_up_exps.weight";
      t = file_.find(name);
      rows = 2 * n_out;
      first = role == "ffn_up" ? n_out : 0;
    }
    if (!t) {
      for (int64_t e = 0; e < n_exp; ++e)
        EMBER_RETURN_IF_ERROR(matrix(fmt::format("{}{}.{}.weight", p, role, e), n_in, n_out, true, out[size_t(e)]));
      return {};
    }
    if (t->n_dims != 3 || t->ne[0] != n_in || t->ne[1] != rows || t->ne[2] != n_exp)
      return make_error(ErrorKind::invalid_file, "{}: tensor '{}' has shape [{}, {}, {}], expected [{}, {}, {}]",
                        file_.name(), file_.display_name(name), t->ne[0], t->ne[1], t->ne[2], n_in, rows, n_exp);
    if (!quant::traits(t->type).computable)
      return make_error(ErrorKind::unsupported, "{}: tensor '{}' has type {}, which ember cannot compute yet",
                        file_.name(), file_.display_name(name), quant::type_name(t->type));
    const std::optional<int64_t> row_bytes = quant::row_bytes(t->type, n_in);
    if (!row_bytes || uint64_t(*row_bytes) * uint64_t(rows) * uint64_t(n_exp) != t->n_bytes)
      return make_error(ErrorKind::invalid_file, "{}: tensor '{}' holds {} bytes, which is not {} experts of {} rows",
                        file_.name(), file_.display_name(name), t->n_bytes, n_exp, rows);
    for (int64_t e = 0; e < n_exp; ++e) {
      Linear& l = out[size_t(e)];
      l.name = fmt::format("{}{}.{}.weight", p, role, e);
      l.type = t->type;
      l.data = static_cast<const uint8_t*>(t->data) + (e * rows + first) * *row_bytes;
      l.n_in = n_in;
      l.n_out = n_out;
      l.row_bytes = *row_bytes;
    }
    if (first == 0) w_.n_bytes += t->n_bytes;  // the fused tensor is counted once
    return {};
  }

 private:
  Status bias(const std::string& weight_name, int64_t n_out, Linear& out) {
    const std::string suffix = ".weight";
    if (weight_name.size() <= suffix.size()) return {};
    const std::string name = weight_name.substr(0, weight_name.size() - suffix.size()) + ".bias";
    return vector(name, n_out, false, out.bias);
  }

  const TensorSource& file_;
  Weights& w_;
};

Status load_moe(Loader& ld, const ModelSpec& spec, const std::string& p, MoeWeights& m) {
  const MoeSpec& ms = spec.moe;
  const int64_t d = spec.n_embd, ff = ms.n_ff_exp, n_exp = ms.n_experts;
  const bool gemma4 = ms.router_input_norm;
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate_inp.weight", d, n_exp, true, m.router));
  EMBER_RETURN_IF_ERROR(ld.experts(p, "ffn_gate", d, ff, n_exp, m.gate));
  EMBER_RETURN_IF_ERROR(ld.experts(p, "ffn_up", d, ff, n_exp, m.up));
  EMBER_RETURN_IF_ERROR(ld.experts(p, "ffn_down", ff, d, n_exp, m.down));
  const bool shared = ms.n_ff_shexp > 0;
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate_shexp.weight", d, ms.n_ff_shexp, shared, m.shexp_gate));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_up_shexp.weight", d, ms.n_ff_shexp, shared, m.shexp_up));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_down_shexp.weight", ms.n_ff_shexp, d, shared, m.shexp_down));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate_inp_shexp.weight", d, 1, shared && ms.shexp_gate, m.shexp_gate_inp));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "ffn_gate_inp.scale", d, gemma4, m.router_scale));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "ffn_down_exps.scale", n_exp, ms.per_expert_scale, m.per_expert_scale));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "pre_ffw_norm_2.weight", d, gemma4, m.pre_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "post_ffw_norm_2.weight", d, gemma4, m.post_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "post_ffw_norm_1.weight", d, gemma4, m.dense_post_norm));
  return {};
}

Status load_layer(Loader& ld, const ModelSpec& spec, int il, LayerWeights& lw) {
  const LayerSpec& ls = spec.layers[size_t(il)];
  const std::string p = fmt::format("blk.{}.", il);
  const int64_t d = spec.n_embd, q_w = int64_t(ls.n_heads) * ls.head_dim, kv_w = int64_t(ls.n_kv_heads) * ls.head_dim;
  EMBER_RETURN_IF_ERROR(ld.vector(p + "attn_norm.weight", d, true, lw.attn_norm));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "attn_q.weight", d, q_w, true, lw.wq));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "attn_k.weight", d, kv_w, true, lw.wk));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "attn_v.weight", d, kv_w, !ls.k_eq_v, lw.wv));
  EMBER_RETURN_IF_ERROR(ld.matrix(p + "attn_output.weight", q_w, d, true, lw.wo));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "attn_q_norm.weight", ls.head_dim, spec.qk_norm, lw.q_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "attn_k_norm.weight", ls.head_dim, spec.qk_norm, lw.k_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "post_attention_norm.weight", d, spec.post_norms, lw.post_attn_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "ffn_norm.weight", d, true, lw.ffn_norm));
  if (ls.ffn != FfnKind::moe) {
    EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_gate.weight", d, spec.n_ff, true, lw.w_gate));
    EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_up.weight", d, spec.n_ff, true, lw.w_up));
    EMBER_RETURN_IF_ERROR(ld.matrix(p + "ffn_down.weight", spec.n_ff, d, true, lw.w_down));
  }
  if (ls.ffn != FfnKind::dense) EMBER_RETURN_IF_ERROR(load_moe(ld, spec, p, lw.moe));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "post_ffw_norm.weight", d, spec.post_norms, lw.post_ffn_norm));
  EMBER_RETURN_IF_ERROR(ld.vector(p + "layer_output_scale.weight", 1, spec.layer_out_scale, lw.layer_out_scale));
  return {};
}

}  // namespace

std::vector<Linear*> MoeWeights::linears() {
  std::vector<Linear*> all{&router, &shexp_gate, &shexp_up, &shexp_down, &shexp_gate_inp};
  for (auto* v : {&gate, &up, &down})
    for (Linear& l : *v) all.push_back(&l);
  return all;
}

Expected<Weights> load_weights(const gguf::File& file, const ModelSpec& spec) {
  return load_weights(GgufSource(file), spec);
}

Expected<Weights> load_weights(const TensorSource& source, const ModelSpec& spec) {
  Weights w;
  Loader ld(source, w);
  EMBER_RETURN_IF_ERROR(ld.matrix("token_embd.weight", spec.n_embd, spec.n_vocab, true, w.token_embd));
  EMBER_RETURN_IF_ERROR(ld.vector("output_norm.weight", spec.n_embd, true, w.output_norm));
  EMBER_RETURN_IF_ERROR(ld.matrix("output.weight", spec.n_embd, spec.n_vocab, false, w.output));
  if (!w.output.present()) w.output = w.token_embd;  // tied embeddings
  w.layers.resize(size_t(spec.n_layers));
  ProgressBar bar("loading", spec.n_layers);  // shown only when loading takes over a second
  for (int il = 0; il < spec.n_layers; ++il) {
    EMBER_RETURN_IF_ERROR(load_layer(ld, spec, il, w.layers[size_t(il)]));
    bar.update(il + 1);
  }
  return w;
}

}  // namespace ember::model
