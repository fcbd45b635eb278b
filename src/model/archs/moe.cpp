// Mixture-of-experts config keys and tensor names (docs/moe.md): GGUF `<arch>.expert_*`
// keys, and the Hugging Face config fields / expert module names of Qwen2-MoE, Qwen3-MoE
// and Mixtral. The decoder's MoE layer kind is in model/moe.h.
#include <algorithm>

#include "model/archs/arch.h"
#include "model/archs/hf.h"

namespace ember::model {

Status read_moe_gguf(const ArchKeys& k, ModelSpec& s) {
  auto n_exp = k.int_key_or("expert_count", 0, 0, 1 << 16);
  if (!n_exp) return n_exp.status();
  if (*n_exp == 0) return {};
  MoeSpec& m = s.moe;
  auto n_used = k.int_key("expert_used_count", 1, *n_exp);
  auto ff = k.int_key_or("expert_feed_forward_length", s.n_ff, 1, 1 << 20);
  auto ff_sh = k.int_key_or("expert_shared_feed_forward_length", 0, 0, 1 << 20);
  auto gating = k.int_key_or("expert_gating_func", 1, 1, 2);
  auto scale = k.float_key_or("expert_weights_scale", 1.0, 1e-6, 1e6);
  for (const Status& st : {n_used.status(), ff.status(), ff_sh.status(), gating.status(), scale.status()})
    if (!st.ok()) return st;
  // llama.cpp renormalises the top-k weights of llama (Mixtral) and qwen3moe, not qwen2moe;
  // expert_weights_norm, when present, says so explicitly.
  bool norm = s.arch != "qwen2moe";
  if (const gguf::Value* v = k.file().find(k.arch() + ".expert_weights_norm")) {
    const auto b = v->as_bool();
    if (!b) return make_error(ErrorKind::invalid_file, "{}: metadata '{}.expert_weights_norm' must be a bool",
                              k.file().name(), k.arch());
    norm = *b;
  }
  m.n_experts = int(*n_exp);
  m.n_experts_used = int(*n_used);
  m.n_ff_exp = int(*ff);
  m.n_ff_shexp = int(*ff_sh);
  m.shexp_gate = m.n_ff_shexp > 0 && k.file().find_tensor("blk.0.ffn_gate_inp_shexp.weight") != nullptr;
  m.gating = *gating == 2 ? MoeGating::sigmoid : MoeGating::softmax;
  m.norm_topk = norm;
  m.weights_scale = float(*scale);
  // A layer has experts when it has a router (models may keep a few dense layers).
  for (int il = 0; il < s.n_layers; ++il)
    if (k.file().find_tensor(fmt::format("blk.{}.ffn_gate_inp.weight", il)) != nullptr)
      s.layers[size_t(il)].ffn = FfnKind::moe;
  if (!s.has_moe())
    return make_error(ErrorKind::invalid_file, "{}: expert_count is {} but no layer has 'ffn_gate_inp.weight'",
                      k.file().name(), m.n_experts);
  return {};
}

namespace {

// Expert module names (transformers 5's save_pretrained writes one tensor per expert; its
// in-memory fused 3-D gate_up_proj / down_proj are accepted too). "*" is the expert index.
const HfLayerNames kQwenMoeHfNames = {
    {"mlp.gate", "ffn_gate_inp"},
    {"mlp.experts.*.gate_proj", "ffn_gate.*"},
    {"mlp.experts.*.up_proj", "ffn_up.*"},
    {"mlp.experts.*.down_proj", "ffn_down.*"},
    {"mlp.experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"mlp.experts.down_proj", "ffn_down_exps.weight"},
    {"mlp.shared_expert.gate_proj", "ffn_gate_shexp"},
    {"mlp.shared_expert.up_proj", "ffn_up_shexp"},
    {"mlp.shared_expert.down_proj", "ffn_down_shexp"},
    {"mlp.shared_expert_gate", "ffn_gate_inp_shexp"},
};

const HfLayerNames kMixtralHfNames = {
    {"block_sparse_moe.gate", "ffn_gate_inp"},
    {"block_sparse_moe.experts.*.w1", "ffn_gate.*"},
    {"block_sparse_moe.experts.*.w3", "ffn_up.*"},
    {"block_sparse_moe.experts.*.w2", "ffn_down.*"},
};

}  // namespace

Status read_moe_hf(const hf::Config& config, HfModelSpec& h) {
  const std::string& a = config.architecture;
  const bool mixtral = a == "MixtralForCausalLM", qwen2 = a == "Qwen2MoeForCausalLM";
  if (!mixtral && !qwen2 && a != "Qwen3MoeForCausalLM") return {};
  ModelSpec& s = h.spec;
  const hf::JsonFields f = config.fields();
  const char* count_key = f.has("num_experts") ? "num_experts" : "num_local_experts";
  auto n_exp = f.int_key(count_key, 1, 1 << 16);
  if (!n_exp) return n_exp.status();
  auto n_used = f.int_key("num_experts_per_tok", 1, *n_exp);
  auto ff = mixtral ? Expected<int64_t>(s.n_ff) : f.int_key("moe_intermediate_size", 1, 1 << 20);
  auto ff_sh = f.int_or("shared_expert_intermediate_size", 0, 0, 1 << 20);
  auto norm = f.bool_or("norm_topk_prob", mixtral);  // Mixtral always renormalises
  auto step = f.int_or("decoder_sparse_step", 1, 1, 1 << 20);
  for (const Status& st : {n_used.status(), ff.status(), ff_sh.status(), norm.status(), step.status()})
    if (!st.ok()) return st;
  std::vector<int64_t> dense_layers;
  if (const nlohmann::json* only = f.find("mlp_only_layers")) {
    if (!only->is_array()) return f.bad("mlp_only_layers", "is not a list of layer indices");
    for (const auto& v : *only) {
      if (!v.is_number_integer()) return f.bad("mlp_only_layers", "holds " + hf::json_summary(v) + ", not a layer index");
      dense_layers.push_back(v.get<int64_t>());
    }
  }
  MoeSpec& m = s.moe;
  m.n_experts = int(*n_exp);
  m.n_experts_used = int(*n_used);
  m.n_ff_exp = int(*ff);
  m.norm_topk = mixtral || *norm;
  m.n_ff_shexp = qwen2 ? int(*ff_sh) : 0;
  m.shexp_gate = m.n_ff_shexp > 0;
  for (int il = 0; il < s.n_layers; ++il) {
    const bool dense = std::find(dense_layers.begin(), dense_layers.end(), il) != dense_layers.end();
    if (mixtral || (!dense && (il + 1) % *step == 0)) s.layers[size_t(il)].ffn = FfnKind::moe;
  }
  const HfLayerNames& names = mixtral ? kMixtralHfNames : kQwenMoeHfNames;
  h.layer_names.insert(h.layer_names.end(), names.begin(), names.end());
  if (mixtral)  // transformers 5 models name the block "mlp" in memory; accept both spellings
    h.layer_names.insert(h.layer_names.end(), kQwenMoeHfNames.begin(), kQwenMoeHfNames.begin() + 6);
  return {};
}

}  // namespace ember::model
