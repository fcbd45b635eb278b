#include "server/responses.h"

namespace ember::server {

void Usage::add(const runtime::EngineEvent& finish) {
  prompt = finish.n_prompt;
  cached = finish.n_cached;
  completion += finish.n_completion;
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt},
          {"completion_tokens", u.completion},
          {"total_tokens", u.prompt + u.completion},
          {"prompt_tokens_details", {{"cached_tokens", u.cached}}}};
}

std::string finish_reason(runtime::FinishReason r, bool has_tool_calls) {
  switch (r) {
    case runtime::FinishReason::stop: return has_tool_calls ? "tool_calls" : "stop";
    case runtime::FinishReason::length: return "length";
    case runtime::FinishReason::cancelled: return "cancelled";
    case runtime::FinishReason::error: return "error";
  }
  return "error";
}

namespace {

Json bytes_of(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(int(c));
  return out;
}

}  // namespace

Json chat_logprob_entry(const tok::Tokenizer& tok, const runtime::EngineEvent& ev) {
  const std::string piece = tok.token_to_piece(ev.logprob.token);
  Json top = Json::array();
  for (const auto& t : ev.top) {
    const std::string p = tok.token_to_piece(t.token);
    top.push_back({{"token", p}, {"logprob", t.logprob}, {"bytes", bytes_of(p)}});
  }
  return {{"token", piece}, {"logprob", ev.logprob.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", top}};
}

Json empty_completion_logprobs() {
  return {{"tokens", Json::array()}, {"token_logprobs", Json::array()}, {"top_logprobs", Json::array()},
          {"text_offset", Json::array()}};
}

void append_completion_logprob(const tok::Tokenizer& tok, const runtime::EngineEvent& ev, size_t text_offset,
                               Json& logprobs) {
  logprobs["tokens"].push_back(tok.token_to_piece(ev.logprob.token));
  logprobs["token_logprobs"].push_back(ev.logprob.logprob);
  Json top = Json::object();
  for (const auto& t : ev.top) top[tok.token_to_piece(t.token)] = t.logprob;
  logprobs["top_logprobs"].push_back(ev.top.empty() ? Json(nullptr) : top);
  logprobs["text_offset"].push_back(text_offset);
}

Json tool_calls_json(const std::vector<chat::ToolCall>& calls, bool streaming, int first) {
  Json out = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    Json c = {{"id", calls[i].id}, {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (streaming) c["index"] = first + int(i);
    out.push_back(std::move(c));
  }
  return out;
}

std::string sse(const Json& chunk) {
  return "data: " + chunk.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace ember::server
