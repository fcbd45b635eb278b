// Hugging Face model directories: config.json -> ModelSpec, and safetensors tensor names
// -> the GGUF names the weight loader reads. See docs/hf.md.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "formats/hf/config.h"
#include "formats/hf/quant_config.h"
#include "formats/safetensors/safetensors.h"
#include "model/spec.h"
#include "model/weights.h"

namespace ember::model {

// Per-layer module names: HF ("self_attn.q_proj") -> GGUF ("attn_q").
using HfLayerNames = std::vector<std::pair<std::string, std::string>>;

struct HfModelSpec {
  ModelSpec spec;
  HfLayerNames layer_names;
  bool tied_embeddings = false;  // tie_word_embeddings: lm_head is the embedding
  bool norm_plus_one = false;    // HF Gemma stores w and applies (1 + w); GGUF stores 1 + w
};

// Fields shared by the supported architectures (hidden_size, heads, rope, layer types...).
// `arch` is the GGUF-style name put in spec.arch.
Expected<HfModelSpec> common_spec_from_hf(const hf::Config& config, const std::string& arch);

// Sets each layer's window and rope from layer_types (when present) or `sliding(il)`.
// `local_base`: sliding layers use rope_local_base_freq when rope_parameters is absent (Gemma 3).
Status apply_layer_types(const hf::Config& config, HfModelSpec& spec, const std::function<bool(int)>& sliding,
                         bool local_base);

Expected<HfModelSpec> llama_spec_from_hf(const hf::Config& config);   // Llama, Mistral, Qwen2/3, Mixtral, Qwen2/3-MoE
// Mixture-of-experts fields and expert tensor names of Mixtral, Qwen2-MoE, Qwen3-MoE (archs/moe.cpp).
Status read_moe_hf(const hf::Config& config, HfModelSpec& spec);
Expected<HfModelSpec> gemma3_spec_from_hf(const hf::Config& config);  // Gemma 3 text (or its text_config)
Expected<HfModelSpec> gemma4_spec_from_hf(const hf::Config& config);  // Gemma 4 text, dense or MoE

// Dispatches on config.architectures[0].
Expected<HfModelSpec> spec_from_hf(const hf::Config& config);

// The tensors of a checkpoint under GGUF names. Holds the checkpoint (its mappings) and any
// tensor it had to convert (F64, misaligned data, FP8 with scales, NVFP4 repacked into
// ember's blocks, low-rank factors), so the views it hands out live as long as it does.
class HfTensors final : public TensorSource {
 public:
  static Expected<std::unique_ptr<HfTensors>> build(safetensors::Checkpoint checkpoint, const HfModelSpec& spec,
                                                    const hf::QuantConfig& quant = {});

  // Sets what load_weights cannot see on the Linears of quantized modules: the NVFP4
  // global scale, pre_quant_scale and the low-rank factors (hf_nvfp4.cpp).
  Status apply_extras(Weights& w) const;

  std::optional<TensorRef> find(std::string_view gguf_name) const override;
  const std::string& name() const override { return checkpoint_.name(); }
  std::string display_name(std::string_view gguf_name) const override;
  const safetensors::Checkpoint& checkpoint() const { return checkpoint_; }
  size_t n_ignored() const { return n_ignored_; }  // checkpoint tensors the decoder does not use

 private:
  Status add(const std::string& gguf_name, const safetensors::TensorInfo& t);
  Status add_fp8(const std::string& gguf_name, const safetensors::TensorInfo& t);
  // A quantized module's packed weight (`module` is its HF name without ".weight").
  Status add_nvfp4(const std::string& gguf_name, const std::string& module, const safetensors::TensorInfo& packed,
                   bool compressed_tensors);
  // compressed-tensors mxfp4-pack-quantized: repacked into ggml MXFP4 blocks (hf_nvfp4.cpp).
  Status add_mxfp4(const std::string& gguf_name, const std::string& module, const safetensors::TensorInfo& packed);
  struct Extras {
    float scale = 1.0f;
    LowRankFactor a, b;
    int64_t rank = 0;
    std::vector<float> pre_quant_scale;
  };
  Status add_lowrank(const std::string& module, int64_t n_in, int64_t n_out, Extras& e);
  // A float tensor of n elements (any shape) as f32; `what` names it in errors.
  Expected<std::vector<float>> small_vector(const std::string& tensor, int64_t n) const;
  // An F32/F16/BF16 matrix [rows][cols] copied into an owned buffer.
  Expected<LowRankFactor> factor(const std::string& tensor, int64_t rows, int64_t cols);

  safetensors::Checkpoint checkpoint_;
  std::string prefix_;  // of the decoder's tensors, e.g. "model."
  HfLayerNames layer_names_;
  std::map<std::string, TensorRef, std::less<>> refs_;
  std::map<std::string, std::string, std::less<>> hf_names_;  // GGUF name -> HF name
  std::vector<std::vector<uint8_t>> owned_;                   // converted tensors
  hf::QuantConfig quant_;
  std::map<std::string, Extras, std::less<>> extras_;         // GGUF weight name -> extras
  size_t n_ignored_ = 0;
};

// Adds 1 to every norm weight (Gemma's HF convention -> the decoder's).
void add_one_to_norms(Weights& w);

}  // namespace ember::model
