// Rendering a conversation with a model's chat template, as transformers'
// apply_chat_template does, and tokenizing the result (docs/chat.md).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/output_parser.h"
#include "chat/template.h"
#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace ember::chat {

using Json = nlohmann::ordered_json;

struct Conversation {
  // [{role: system|user|assistant|tool|..., content: string | null | [{type: "text", text}],
  //   tool_calls?: [{id, type: "function", function: {name, arguments}}], tool_call_id?,
  //   reasoning_content?}]
  Json messages = Json::array();
  Json tools;      // null, or the OpenAI function list [{type: "function", function: {...}}]
  Json documents;  // null, or a list of documents
  bool add_generation_prompt = true;
  Json kwargs = Json::object();  // more template variables: enable_thinking, ...
};

class ChatTemplate {
 public:
  // Parses `source` and probes what it accepts (content given as a list of parts; tool
  // call arguments as an object or only as a JSON string).
  static Expected<ChatTemplate> create(std::string source, std::string bos_token, std::string eos_token,
                                       TemplateOptions options = {});
  // The prompt text. Errors: malformed messages (invalid_argument naming the message and
  // field), template errors (raise_exception's message, limits).
  Expected<std::string> render(const Conversation& conversation) const;
  // How to parse the output that follows `prompt`.
  OutputFormat output_format(std::string_view prompt) const { return detect_output_format(source_, prompt); }

  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_; }
  bool accepts_content_parts() const { return content_parts_; }
  bool accepts_object_arguments() const { return object_arguments_; }

 private:
  Expected<std::string> render_raw(const Conversation& c, bool parts, bool object_args) const;

  Template template_;
  std::string source_, bos_, eos_;
  bool content_parts_ = true;
  bool object_arguments_ = true;
};

// Messages checked and brought to the shape templates expect: text parts joined into a
// string unless `keep_parts`; tool call arguments parsed into objects when `object_args`
// (a string that is not JSON stays a string); reasoning_content mirrored into thinking.
Expected<Json> normalize_messages(const Json& messages, bool keep_parts, bool object_args);

// The assistant message for a parsed reply (the shape normalize_messages accepts).
Json assistant_message(const ParsedOutput& reply);

// The prompt's tokens: special-token text parsed; BOS added only when the tokenizer asks
// for it and the text does not already start with the BOS text (no double BOS).
std::vector<int32_t> tokenize_prompt(const tok::Tokenizer& tokenizer, std::string_view prompt);

// The BOS/EOS token texts templates see as bos_token / eos_token ("" when absent).
std::string bos_text(const tok::Tokenizer& tokenizer);
std::string eos_text(const tok::Tokenizer& tokenizer);

}  // namespace ember::chat
