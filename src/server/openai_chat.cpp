// POST /v1/chat/completions
#include <httplib.h>

#include "chat/conversation.h"
#include "server/context.h"
#include "server/responder.h"

namespace ember::server {

namespace {

struct ChatChoice {
  explicit ChatChoice(chat::OutputFormat f) : parser(f) {}
  chat::OutputParser parser;
  Json logprobs = Json::array();
  std::string finish;
  int n_calls_sent = 0;
  // tool_choice "required" / a named function: the constrained output and its calls.
  std::string raw;
  std::string call_id;
  std::vector<chat::ToolCall> forced_calls;
};

// The calls in a forced tool_choice output: a named function's arguments, or the
// [{"name", "parameters"}] array of "required". None when the output was cut short.
std::vector<chat::ToolCall> forced_calls(const std::string& raw, const std::string& tool_name, const std::string& id) {
  std::vector<chat::ToolCall> calls;
  const Json v = Json::parse(raw, nullptr, false);
  if (v.is_discarded()) return calls;
  if (!tool_name.empty()) {
    if (v.is_object()) calls.push_back({id, tool_name, v.dump()});
    return calls;
  }
  if (!v.is_array()) return calls;
  for (const auto& item : v)
    if (item.is_object() && item.contains("name") && item["name"].is_string() && item.contains("parameters"))
      calls.push_back({id + "-" + std::to_string(calls.size()), item["name"].get<std::string>(),
                       item["parameters"].dump()});
  return calls;
}

class ChatResponder final : public Responder {
 public:
  ChatResponder(const Backend& b, const ChatRequest& req, chat::OutputFormat format, std::string model)
      : tok_(b.model->tokenizer), logprobs_(req.gen.logprobs), include_usage_(req.gen.include_usage),
        forced_(req.tool_choice == "required" || req.tool_choice == "function"), model_(std::move(model)),
        tool_name_(req.tool_name), id_(random_id("chatcmpl-")), created_(unix_time()) {
    for (int i = 0; i < req.gen.n; ++i) {
      choices_.emplace_back(format);
      choices_.back().call_id = random_id("call_");
    }
  }

  std::string stream_start() override {
    std::string out;
    for (size_t i = 0; i < choices_.size(); ++i)
      out += sse(chunk(int(i), {{"role", "assistant"}, {"content", ""}}, nullptr));
    return out;
  }

  std::string on_event(const ChoiceEvent& e, bool streaming) override {
    ChatChoice& c = choices_[size_t(e.choice)];
    const auto& ev = e.event;
    if (forced_) return on_forced_event(c, e, streaming);
    chat::ChatDelta d;
    Json lp = nullptr;
    if (ev.kind == runtime::EngineEvent::Kind::token) {
      d = c.parser.push(ev.text);
      if (logprobs_ && ev.logprob.token >= 0) {
        c.logprobs.push_back(chat_logprob_entry(tok_, ev));
        lp = Json{{"content", Json::array({c.logprobs.back()})}};
      }
    } else {
      d = c.parser.finish();
      c.finish = finish_reason(ev.reason, !c.parser.result().tool_calls.empty());
    }
    if (!streaming) return {};
    std::string out;
    if (!d.empty() || !lp.is_null()) out += sse(chunk(e.choice, delta_json(c, d), nullptr, lp));
    if (ev.kind == runtime::EngineEvent::Kind::finish) out += sse(chunk(e.choice, Json::object(), c.finish));
    return out;
  }

  std::string stream_end() override {
    if (!include_usage_) return {};
    Json u = base("chat.completion.chunk");
    u["choices"] = Json::array();
    u["usage"] = usage_json(usage);
    return sse(u);
  }

  Json response() override {
    Json out = base("chat.completion");
    out["choices"] = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const auto& r = choices_[i].parser.result();
      Json msg = {{"role", "assistant"}, {"content", r.content}};
      if (!r.reasoning_content.empty()) msg["reasoning_content"] = r.reasoning_content;
      if (!r.tool_calls.empty()) {
        msg["tool_calls"] = tool_calls_json(r.tool_calls, false);
        if (r.content.empty()) msg["content"] = nullptr;
      }
      if (forced_) {
        const auto& calls = choices_[i].forced_calls;
        msg = {{"role", "assistant"}, {"content", calls.empty() ? Json(choices_[i].raw) : Json(nullptr)}};
        if (!calls.empty()) msg["tool_calls"] = tool_calls_json(calls, false);
      }
      Json lp = logprobs_ ? Json{{"content", choices_[i].logprobs}} : Json(nullptr);
      out["choices"].push_back(
          {{"index", i}, {"message", msg}, {"logprobs", lp}, {"finish_reason", choices_[i].finish}});
    }
    out["usage"] = usage_json(usage);
    return out;
  }

 private:
  // A forced tool call: a named function streams its arguments as they come; "required"
  // sends its calls once the array is complete.
  std::string on_forced_event(ChatChoice& c, const ChoiceEvent& e, bool streaming) {
    const auto& ev = e.event;
    std::string out;
    if (ev.kind == runtime::EngineEvent::Kind::token) {
      c.raw += ev.text;
      Json lp = nullptr;
      if (logprobs_ && ev.logprob.token >= 0) {
        c.logprobs.push_back(chat_logprob_entry(tok_, ev));
        lp = Json{{"content", Json::array({c.logprobs.back()})}};
      }
      if (!streaming) return {};
      Json delta = Json::object();
      if (!tool_name_.empty() && (!ev.text.empty() || c.n_calls_sent == 0)) {
        Json call = {{"index", 0}, {"function", {{"arguments", ev.text}}}};
        if (c.n_calls_sent == 0) {
          call["id"] = c.call_id;
          call["type"] = "function";
          call["function"]["name"] = tool_name_;
          c.n_calls_sent = 1;
        }
        delta["tool_calls"] = Json::array({call});
      }
      if (!delta.empty() || !lp.is_null()) out += sse(chunk(e.choice, delta, nullptr, lp));
      return out;
    }
    c.forced_calls = forced_calls(c.raw, tool_name_, c.call_id);
    c.finish = finish_reason(ev.reason, !c.forced_calls.empty());
    if (!streaming) return {};
    if (tool_name_.empty() && !c.forced_calls.empty())
      out += sse(chunk(e.choice, {{"tool_calls", tool_calls_json(c.forced_calls, true)}}, nullptr));
    else if (tool_name_.empty() && !c.raw.empty())
      out += sse(chunk(e.choice, {{"content", c.raw}}, nullptr));
    out += sse(chunk(e.choice, Json::object(), c.finish));
    return out;
  }

  Json base(const char* object) const {
    return {{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
  }
  Json chunk(int index, Json delta, Json finish, Json logprobs = nullptr) const {
    Json c = base("chat.completion.chunk");
    c["choices"] = Json::array(
        {{{"index", index}, {"delta", std::move(delta)}, {"logprobs", logprobs}, {"finish_reason", finish}}});
    return c;
  }
  static Json delta_json(ChatChoice& c, const chat::ChatDelta& d) {
    Json delta = Json::object();
    if (!d.reasoning_content.empty()) delta["reasoning_content"] = d.reasoning_content;
    if (!d.content.empty()) delta["content"] = d.content;
    if (!d.tool_calls.empty()) {
      delta["tool_calls"] = tool_calls_json(d.tool_calls, true, c.n_calls_sent);
      c.n_calls_sent += int(d.tool_calls.size());
    }
    return delta;
  }

  const tok::Tokenizer& tok_;
  bool logprobs_, include_usage_, forced_;
  std::string model_, tool_name_, id_;
  int64_t created_;
  std::vector<ChatChoice> choices_;
};

}  // namespace

void handle_chat_completions(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Backend* b = ready_backend(ctx, res);
  Json body;
  if (!b || !parse_body(req, res, body)) return;
  auto parsed = parse_chat_request(body, ctx.options.limits);
  if (!parsed.ok()) return send_error(res, api_error(400, parsed.error.message, parsed.error.param));
  const ChatRequest& c = parsed.value;
  chat::Conversation conv;
  conv.messages = c.messages;
  if (c.tool_choice != "none") conv.tools = c.tools;
  conv.kwargs.update(c.template_kwargs);
  auto text = b->chat_template->render(conv);
  if (!text) return send_error(res, api_error(text.status(), "messages"));
  const std::vector<int32_t> prompt = chat::tokenize_prompt(b->model->tokenizer, *text);
  if (!check_token_ids(*b, prompt, c.gen, res)) return;
  const int n_ctx = b->engine->n_ctx();
  if (c.gen.max_tokens > 0 && int64_t(prompt.size()) + c.gen.max_tokens > n_ctx)
    return send_error(res, api_error(400,
                                     fmt::format("the prompt ({} tokens) plus max_tokens ({}) exceeds the context "
                                                 "size ({} tokens)", prompt.size(), c.gen.max_tokens, n_ctx),
                                     "max_tokens"));
  std::vector<std::string> stops = c.gen.stop;
  stops.insert(stops.end(), b->chat_stops.begin(), b->chat_stops.end());
  auto responder = std::make_shared<ChatResponder>(*b, c, b->chat_template->output_format(*text),
                                                   ctx.options.served_model_name);
  responder->group = std::make_unique<RequestGroup>(*b->engine);
  if (Status st = responder->group->submit(prompt, c.gen, stops); !st) return send_error(res, api_error(st));
  respond(res, responder, c.gen.stream);
}

}  // namespace ember::server
