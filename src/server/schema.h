// Parsing and validating OpenAI request bodies (chat completions, completions) into
// plain structs. Unknown fields are ignored; a present field of the wrong type or out of
// range is an error naming the field (docs/server.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "grammar/grammar.h"
#include "runtime/sampler.h"
#include "server/errors.h"

namespace ember::server {

// Limits the server applies while parsing.
struct RequestLimits {
  int max_n = 16;
  int max_stop = 16;
  int max_top_logprobs = 20;
};

// Settings shared by both endpoints.
struct GenerationParams {
  int n = 1;
  int max_tokens = -1;  // -1: not given (until end of turn or a full context)
  runtime::SamplingParams sampling;
  bool has_seed = false;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool logprobs = false;
  int top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
  bool ignore_eos = false;
  std::string response_format = "text";             // text | json_object | json_schema
  std::shared_ptr<const grammar::Grammar> grammar;  // the output's grammar, if constrained
};

struct ChatRequest {
  GenerationParams gen;
  Json messages;                        // as given; the chat layer checks each message
  Json tools;                           // null or the function list
  std::string tool_choice = "auto";     // auto | none | required | function (tool_name)
  std::string tool_name;
  Json template_kwargs = Json::object();  // chat_template_kwargs
};

struct CompletionRequest {
  GenerationParams gen;
  std::string prompt_text;              // when the prompt is a string
  std::vector<int32_t> prompt_tokens;   // when the prompt is a list of token ids
  bool prompt_is_tokens = false;
  bool echo = false;
};

// A parse failure: the message and the field at fault.
struct ParseError {
  std::string message;
  std::string param;
};

template <typename T>
struct Parsed {
  T value;
  ParseError error;  // message empty on success
  bool ok() const { return error.message.empty(); }
};

Parsed<ChatRequest> parse_chat_request(const Json& body, const RequestLimits& limits = {});
Parsed<CompletionRequest> parse_completion_request(const Json& body, const RequestLimits& limits = {});

}  // namespace ember::server
