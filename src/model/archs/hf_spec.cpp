// config.json -> ModelSpec: the fields every supported architecture shares.
#include <cmath>

#include "model/archs/hf.h"

namespace ember::model {
namespace {

using json = nlohmann::json;

struct Rope {
  float base = 10000.0f;
  float scale = 1.0f;
};

// One rope description: {"rope_type"/"type", "rope_theta", "factor"}.
Status read_rope_entry(const hf::JsonFields& f, Rope& rope) {
  auto theta = f.float_or("rope_theta", rope.base, 1.0, 1e12);
  if (!theta) return theta.status();
  rope.base = float(*theta);
  auto type = f.string_or("rope_type", "");
  if (!type) return type.status();
  if (type->empty()) {
    auto legacy = f.string_or("type", "default");
    if (!legacy) return legacy.status();
    *type = *legacy;
  }
  if (*type == "default") return {};
  if (*type != "linear") return f.unsupported("rope_type", fmt::format("'{}' is not supported (default, linear)", *type));
  auto factor = f.float_or("factor", 1.0, 1e-6, 1e6);
  if (!factor) return factor.status();
  rope.scale = float(1.0 / *factor);
  return {};
}

// Rope of a layer of `kind` ("full_attention" / "sliding_attention"). transformers 5 writes
// rope_parameters (one entry, or one per layer kind); older files rope_theta + rope_scaling
// (+ Gemma 3's rope_local_base_freq for sliding layers, which are never scaled).
Expected<Rope> read_rope(const hf::JsonFields& f, const std::string& kind, bool local_base) {
  Rope rope;
  if (const json* rp = f.find("rope_parameters")) {
    if (!rp->is_object()) return f.bad("rope_parameters", "is not an object");
    const json* entry = rp;
    std::string key = "rope_parameters";
    if (rp->contains(kind) && (*rp)[kind].is_object()) {
      entry = &(*rp)[kind];
      key += "." + kind;
    }
    EMBER_RETURN_IF_ERROR(read_rope_entry(f.sub(*entry, key), rope));
    return rope;
  }
  auto theta = f.float_or("rope_theta", 10000.0, 1.0, 1e12);
  if (!theta) return theta.status();
  rope.base = float(*theta);
  if (local_base && kind == "sliding_attention") {
    auto local = f.float_or("rope_local_base_freq", 10000.0, 1.0, 1e12);
    if (!local) return local.status();
    rope.base = float(*local);
    return rope;
  }
  if (const json* rs = f.find("rope_scaling")) {
    if (!rs->is_object()) return f.bad("rope_scaling", "is not an object");
    EMBER_RETURN_IF_ERROR(read_rope_entry(f.sub(*rs, "rope_scaling"), rope));
    rope.base = float(*theta);
  }
  return rope;
}

Expected<Activation> read_activation(const hf::JsonFields& f) {
  const char* key = f.has("hidden_activation") ? "hidden_activation" : "hidden_act";
  auto act = f.string_or(key, "silu");
  if (!act) return act.status();
  if (*act == "silu" || *act == "swish") return Activation::silu;
  if (*act == "gelu_pytorch_tanh" || *act == "gelu_tanh") return Activation::gelu_tanh;
  return f.unsupported(key, fmt::format("'{}' is not supported (silu, gelu_pytorch_tanh)", *act));
}

}  // namespace

Expected<HfModelSpec> common_spec_from_hf(const hf::Config& config, const std::string& arch) {
  constexpr int64_t kMaxDim = 1 << 20;
  const hf::JsonFields f = config.fields();
  auto n_layers = f.int_key("num_hidden_layers", 1, 1024);
  auto n_embd = f.int_key("hidden_size", 1, kMaxDim);
  auto n_ff = f.int_key("intermediate_size", 1, kMaxDim);
  auto n_heads = f.int_key("num_attention_heads", 1, 4096);
  auto n_vocab = f.int_key("vocab_size", 1, int64_t(1) << 24);
  auto n_ctx = f.int_or("max_position_embeddings", 4096, 1, int64_t(1) << 31);
  auto eps = f.float_or("rms_norm_eps", 1e-6, 0.0, 1.0);
  auto tied = f.bool_or("tie_word_embeddings", false);
  auto act = read_activation(f);
  for (const Status& st : {n_layers.status(), n_embd.status(), n_ff.status(), n_heads.status(), n_vocab.status(),
                           n_ctx.status(), eps.status(), tied.status(), act.status()})
    if (!st.ok()) return st;
  auto n_kv = f.int_or("num_key_value_heads", *n_heads, 1, *n_heads);
  if (!n_kv) return n_kv.status();
  if (*n_heads % *n_kv != 0)
    return f.bad("num_key_value_heads", fmt::format("{} does not divide num_attention_heads {}", *n_kv, *n_heads));
  if (!f.has("head_dim") && *n_embd % *n_heads != 0)
    return f.bad("num_attention_heads", fmt::format("{} does not divide hidden_size {}", *n_heads, *n_embd));
  auto head_dim = f.int_or("head_dim", *n_embd / *n_heads, 1, 4096);
  if (!head_dim) return head_dim.status();
  if (*head_dim % 2 != 0) return f.bad("head_dim", fmt::format("{} is odd; rope needs an even head_dim", *head_dim));

  HfModelSpec h;
  ModelSpec& s = h.spec;
  s.arch = arch;
  s.n_layers = int(*n_layers);
  s.n_embd = int(*n_embd);
  s.n_ff = int(*n_ff);
  s.n_vocab = int(*n_vocab);
  s.n_ctx_train = int(*n_ctx);
  s.norm_eps = float(*eps);
  s.act = *act;
  s.rope_style = cpu::RopeStyle::neox;  // HF checkpoints keep q/k in the half-split layout
  h.tied_embeddings = *tied;
  s.layers.assign(size_t(s.n_layers), LayerSpec{int(*n_heads), int(*n_kv), int(*head_dim), 0, 10000.0f, 1.0f});
  return h;
}

// Per-layer attention kind: layer_types when present, else `fallback(il)`; sets windows and rope.
Status apply_layer_types(const hf::Config& config, HfModelSpec& h, const std::function<bool(int)>& sliding_fallback,
                         bool local_base) {
  const hf::JsonFields f = config.fields();
  ModelSpec& s = h.spec;
  const json* types = f.find("layer_types");
  if (types != nullptr && (!types->is_array() || types->size() != size_t(s.n_layers)))
    return f.bad("layer_types", fmt::format("is not a list of {} layer kinds", s.n_layers));
  auto window = f.int_or("sliding_window", 0, 0, int64_t(1) << 31);
  if (!window) return window.status();
  for (int il = 0; il < s.n_layers; ++il) {
    bool sliding = sliding_fallback(il);
    if (types != nullptr) {
      const json& t = (*types)[size_t(il)];
      if (t != "full_attention" && t != "sliding_attention")
        return f.unsupported("layer_types", fmt::format("entry {} is {}, not full_attention or sliding_attention", il, t.dump()));
      sliding = t == "sliding_attention";
    }
    if (sliding && *window == 0) return f.bad("sliding_window", "is missing but a layer uses sliding attention");
    auto rope = read_rope(f, sliding ? "sliding_attention" : "full_attention", local_base);
    if (!rope) return rope.status();
    LayerSpec& l = s.layers[size_t(il)];
    l.window = sliding ? int(*window) : 0;
    l.rope_base = rope->base;
    l.rope_scale = rope->scale;
  }
  return {};
}

Expected<HfModelSpec> spec_from_hf(const hf::Config& config) {
  const std::string& a = config.architecture;
  if (a == "LlamaForCausalLM" || a == "MistralForCausalLM" || a == "Qwen2ForCausalLM" || a == "Qwen3ForCausalLM" ||
      a == "MixtralForCausalLM" || a == "Qwen2MoeForCausalLM" || a == "Qwen3MoeForCausalLM")
    return llama_spec_from_hf(config);
  if (a == "Gemma3ForCausalLM" || a == "Gemma3ForConditionalGeneration") return gemma3_spec_from_hf(config);
  if (a == "Gemma4ForCausalLM" || a == "Gemma4ForConditionalGeneration") return gemma4_spec_from_hf(config);
  return make_error(ErrorKind::unsupported,
                    "{}: architecture '{}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                    "Qwen2ForCausalLM, Qwen3ForCausalLM, MixtralForCausalLM, Qwen2MoeForCausalLM, "
                    "Qwen3MoeForCausalLM, Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma4ForCausalLM, "
                    "Gemma4ForConditionalGeneration)",
                    config.path, a);
}

}  // namespace ember::model
