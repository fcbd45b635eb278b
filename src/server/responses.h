// Building OpenAI response objects: usage, logprobs, tool calls, SSE framing.
#pragma once
#include <string>
#include <vector>

#include "chat/output_parser.h"
#include "runtime/engine.h"
#include "server/errors.h"
#include "tokenizer/tokenizer.h"

namespace ember::server {

// Counts over the choices of one request (the prompt is counted once).
struct Usage {
  int prompt = 0, completion = 0, cached = 0;
  void add(const runtime::EngineEvent& finish);  // a finish event
};
Json usage_json(const Usage& u);

// The finish_reason the API reports; "tool_calls" when the reply holds tool calls.
std::string finish_reason(runtime::FinishReason r, bool has_tool_calls);

// Chat logprobs: one entry of choices[].logprobs.content.
Json chat_logprob_entry(const tok::Tokenizer& tok, const runtime::EngineEvent& ev);

// Completions logprobs: appends a token to {tokens, token_logprobs, top_logprobs, text_offset}.
void append_completion_logprob(const tok::Tokenizer& tok, const runtime::EngineEvent& ev, size_t text_offset,
                               Json& logprobs);
Json empty_completion_logprobs();

// tool_calls as in a message (streaming: with an "index" per call, numbered from `first`).
Json tool_calls_json(const std::vector<chat::ToolCall>& calls, bool streaming, int first = 0);

// "data: <json>\n\n"
std::string sse(const Json& chunk);

}  // namespace ember::server
