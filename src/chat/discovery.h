// Finding a model's chat template (docs/chat.md). Sources, first found wins:
//   1. an override: a template file, or the name of a template variant the model ships
//      (GGUF tokenizer.chat_template.<name>, named entries of tokenizer_config.json's
//      chat_template list, additional_chat_templates/<name>.jinja);
//   2. GGUF tokenizer.chat_template;
//   3. tokenizer_config.json "chat_template" (a string, or [{name, template}] where
//      "default" is the default), then chat_template.json, in an HF directory;
//   4. chat_template.jinja beside the weights (in the HF directory or the GGUF's folder);
//   5. a built-in ChatML template (found.fallback is set so callers can say so).
#pragma once
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/gguf/gguf.h"

namespace ember::chat {

struct TemplateQuery {
  const gguf::File* gguf = nullptr;  // the model's GGUF file, or nullptr for an HF directory
  std::string model_path;            // a .gguf file, an HF directory or its config.json
  std::string override_spec;         // --chat-template FILE|NAME ("" = none)
};

struct FoundTemplate {
  std::string source;  // the Jinja text
  std::string origin;  // where it came from, for messages ("GGUF tokenizer.chat_template", a path, ...)
  bool fallback = false;
};

// Errors: an override that is neither a readable file nor a known name (the message
// lists the names), unreadable or malformed tokenizer_config.json.
Expected<FoundTemplate> find_chat_template(const TemplateQuery& query);

// The names of the template variants the model ships ("default" included when present).
Expected<std::vector<std::string>> chat_template_names(const TemplateQuery& query);

// The built-in ChatML template.
const std::string& chatml_template();

}  // namespace ember::chat
