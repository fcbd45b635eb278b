// POST /v1/completions
#include <httplib.h>

#include "chat/conversation.h"
#include "server/context.h"
#include "server/responder.h"

namespace ember::server {

namespace {

struct TextChoice {
  std::string text;
  Json logprobs = empty_completion_logprobs();
  std::string finish;
};

class CompletionResponder final : public Responder {
 public:
  CompletionResponder(const Backend& b, const CompletionRequest& req, std::string echo, std::string model)
      : tok_(b.model->tokenizer), logprobs_(req.gen.logprobs), include_usage_(req.gen.include_usage),
        echo_(std::move(echo)), model_(std::move(model)), id_(random_id("cmpl-")), created_(unix_time()),
        choices_(size_t(req.gen.n)) {
    for (auto& c : choices_) c.text = echo_;
  }

  std::string stream_start() override {
    std::string out;
    if (echo_.empty()) return out;
    for (size_t i = 0; i < choices_.size(); ++i) out += sse(chunk(int(i), echo_, nullptr, nullptr));
    return out;
  }

  std::string on_event(const ChoiceEvent& e, bool streaming) override {
    TextChoice& c = choices_[size_t(e.choice)];
    const auto& ev = e.event;
    if (ev.kind == runtime::EngineEvent::Kind::finish) {
      c.finish = finish_reason(ev.reason, false);
      return streaming ? sse(chunk(e.choice, "", c.finish, nullptr)) : std::string();
    }
    Json lp = nullptr;
    if (logprobs_ && ev.logprob.token >= 0) {
      append_completion_logprob(tok_, ev, c.text.size(), c.logprobs);
      if (streaming) {
        lp = empty_completion_logprobs();
        append_completion_logprob(tok_, ev, c.text.size(), lp);
      }
    }
    c.text += ev.text;
    if (!streaming || (ev.text.empty() && lp.is_null())) return {};
    return sse(chunk(e.choice, ev.text, nullptr, lp));
  }

  std::string stream_end() override {
    if (!include_usage_) return {};
    Json u = base();
    u["choices"] = Json::array();
    u["usage"] = usage_json(usage);
    return sse(u);
  }

  Json response() override {
    Json out = base();
    out["choices"] = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i)
      out["choices"].push_back({{"text", choices_[i].text},
                                {"index", i},
                                {"logprobs", logprobs_ ? choices_[i].logprobs : Json(nullptr)},
                                {"finish_reason", choices_[i].finish}});
    out["usage"] = usage_json(usage);
    return out;
  }

 private:
  Json base() const { return {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_}}; }
  Json chunk(int index, const std::string& text, Json finish, Json logprobs) const {
    Json c = base();
    c["choices"] =
        Json::array({{{"text", text}, {"index", index}, {"logprobs", logprobs}, {"finish_reason", finish}}});
    return c;
  }

  const tok::Tokenizer& tok_;
  bool logprobs_, include_usage_;
  std::string echo_, model_, id_;
  int64_t created_;
  std::vector<TextChoice> choices_;
};

}  // namespace

void handle_completions(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Backend* b = ready_backend(ctx, res);
  Json body;
  if (!b || !parse_body(req, res, body)) return;
  auto parsed = parse_completion_request(body, ctx.options.limits);
  if (!parsed.ok()) return send_error(res, api_error(400, parsed.error.message, parsed.error.param));
  const CompletionRequest& c = parsed.value;
  const auto& tok = b->model->tokenizer;
  const std::vector<int32_t> prompt = c.prompt_is_tokens ? c.prompt_tokens : chat::tokenize_prompt(tok, c.prompt_text);
  if (prompt.empty()) return send_error(res, api_error(400, "the prompt is empty", "prompt"));
  if (!check_token_ids(*b, prompt, c.gen, res)) return;
  const int n_ctx = b->engine->n_ctx();
  if (c.gen.max_tokens > 0 && int64_t(prompt.size()) + c.gen.max_tokens > n_ctx)
    return send_error(res, api_error(400,
                                     fmt::format("the prompt ({} tokens) plus max_tokens ({}) exceeds the context "
                                                 "size ({} tokens)", prompt.size(), c.gen.max_tokens, n_ctx),
                                     "max_tokens"));
  std::string echo;
  if (c.echo) echo = c.prompt_is_tokens ? tok.decode(prompt) : c.prompt_text;
  auto responder = std::make_shared<CompletionResponder>(*b, c, echo, ctx.options.served_model_name);
  responder->group = std::make_unique<RequestGroup>(*b->engine);
  if (Status st = responder->group->submit(prompt, c.gen, c.gen.stop); !st) return send_error(res, api_error(st));
  respond(res, responder, c.gen.stream);
}

}  // namespace ember::server
