// A loaded model: its spec, weight views and tokenizer, from a GGUF file or a Hugging Face
// directory (config.json + safetensors + tokenizer.json; see docs/hf.md).
#pragma once
#include <memory>
#include <string>

#include "core/status.h"
#include "formats/gguf/gguf.h"
#include "formats/hf/config.h"
#include "model/spec.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace ember::model {

class HfTensors;

struct Model {
  gguf::File file;            // the GGUF file (empty for a Hugging Face directory)
  ModelSpec spec;
  Weights weights;
  tok::Tokenizer tokenizer;
  std::string chat_template;  // tokenizer.chat_template, empty when absent
  // Hugging Face directories only: the safetensors tensors the weights point into, and
  // generation_config.json's sampling defaults (all empty for GGUF).
  std::shared_ptr<const HfTensors> hf_tensors;
  hf::GenerationConfig generation;

  // `path`: a .gguf file, a Hugging Face model directory, or that directory's config.json.
  static Expected<std::unique_ptr<Model>> load(const std::string& path);
  static Expected<std::unique_ptr<Model>> load_gguf(const std::string& path);
  static Expected<std::unique_ptr<Model>> load_hf(const std::string& path);
};

}  // namespace ember::model
