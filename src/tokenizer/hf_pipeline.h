// Internal: how Tokenizer::from_hf reads the normalizer / pre-tokenizer / post-processor
// of a tokenizer.json into the few shapes ember implements (see docs/hf.md).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "tokenizer/pretokenize.h"

namespace ember::tok {

struct HfPipeline {
  bool byte_level = false;        // ByteLevel pre-tokenizer: GPT-2 byte alphabet, merges by rank
  bool spm = false;               // spaces become U+2581 (Replace normalizer or Metaspace)
  bool add_space_prefix = false;  // Prepend("▁") normalizer or Metaspace prepend_scheme first/always
  bool prefix_each_segment = false;
  bool prefix_if_missing = false;    // Metaspace: no prefix before a leading space  // Prepend normalizer / Metaspace "always": after special tokens too
  PreTokenizer pre = PreTokenizer::gpt2;
  std::string pre_name = "default";
  // From a TemplateProcessing post-processor: the special token put before / after the text.
  std::optional<std::string> bos_text, eos_text;
};

// `file` names tokenizer.json in errors.
Expected<HfPipeline> read_hf_pipeline(const nlohmann::json& doc, const std::string& file);

}  // namespace ember::tok
