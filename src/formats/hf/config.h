// A Hugging Face model directory: config.json (architecture and hyper-parameters),
// generation_config.json (sampling defaults), tokenizer_config.json + tokenizer.json
// (+ chat_template.jinja). See docs/hf.md. Weights are in formats/safetensors/.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/hf/json_fields.h"

namespace ember::hf {

// True when `path` is a directory with a config.json, or a config.json file.
bool is_model_dir(const std::string& path);
// The directory of a model given as the directory or as its config.json.
Expected<std::string> resolve_model_dir(const std::string& path);

struct Config {
  std::string dir;           // the model directory
  std::string path;          // .../config.json
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;    // of the text model, e.g. "llama", "gemma3_text"
  nlohmann::json root;       // the whole file
  nlohmann::json text;       // the text model's fields: root, or root.text_config
  std::string text_prefix;   // "" or "text_config." (for error messages)
  JsonFields fields() const { return JsonFields(text, path, text_prefix); }
};

// Reads dir/config.json. Multimodal wrappers whose text model is in `text_config`
// (Gemma3ForConditionalGeneration) expose that as `text`.
Expected<Config> read_config(const std::string& dir);

// generation_config.json: what the model's authors want as sampling defaults. Every field is
// optional; a missing file gives all-empty defaults.
struct GenerationConfig {
  bool present = false;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens, max_length;
  std::optional<int32_t> bos_token_id, pad_token_id;
  std::vector<int32_t> eos_token_ids;  // eos_token_id: one id or a list
};
Expected<GenerationConfig> read_generation_config(const std::string& dir);
Expected<GenerationConfig> parse_generation_config(const nlohmann::json& doc, const std::string& name);

// tokenizer_config.json: special-token texts, add_bos/add_eos and the chat template.
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::string chat_template;  // "" when none (also read from chat_template.jinja)
};
Expected<TokenizerConfig> parse_tokenizer_config(const nlohmann::json& doc, const std::string& name);

// Everything Tokenizer::from_hf needs.
struct TokenizerSource {
  std::string path;        // .../tokenizer.json
  nlohmann::json json;     // tokenizer.json
  TokenizerConfig config;  // tokenizer_config.json (defaults when absent)
};
Expected<TokenizerSource> read_tokenizer_source(const std::string& dir);

}  // namespace ember::hf
