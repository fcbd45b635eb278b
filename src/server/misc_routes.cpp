// POST /tokenize, POST /detokenize, GET /metrics.
#include <httplib.h>

#include "chat/conversation.h"
#include "server/context.h"
#include "server/metrics.h"

namespace ember::server {

void handle_tokenize(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Backend* b = ready_backend(ctx, res);
  Json body;
  if (!b || !parse_body(req, res, body)) return;
  if (!body.is_object()) return send_error(res, api_error(400, "the request body must be a JSON object"));
  const auto& tok = b->model->tokenizer;
  std::string text;
  if (body.contains("messages")) {
    chat::Conversation conv;
    conv.messages = body["messages"];
    conv.add_generation_prompt = body.value("add_generation_prompt", true);
    auto rendered = b->chat_template->render(conv);
    if (!rendered) return send_error(res, api_error(rendered.status(), "messages"));
    text = *rendered;
  } else if (body.contains("prompt") && body["prompt"].is_string()) {
    text = body["prompt"].get<std::string>();
  } else {
    return send_error(res, api_error(400, "'prompt' (a string) or 'messages' is required", "prompt"));
  }
  const auto add_special = body.find("add_special_tokens");
  if (add_special != body.end() && !add_special->is_boolean())
    return send_error(res, api_error(400, "'add_special_tokens' must be a boolean", "add_special_tokens"));
  const bool special = add_special == body.end() || add_special->get<bool>();
  const std::vector<int32_t> ids = special ? chat::tokenize_prompt(tok, text) : tok.encode(text, false, true);
  send_json(res, 200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", b->engine->n_ctx()}});
}

void handle_detokenize(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Backend* b = ready_backend(ctx, res);
  Json body;
  if (!b || !parse_body(req, res, body)) return;
  const auto& tok = b->model->tokenizer;
  if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
    return send_error(res, api_error(400, "'tokens' (a list of token ids) is required", "tokens"));
  std::vector<int32_t> ids;
  for (const auto& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
      return send_error(res, api_error(400, "'tokens' must hold token ids of this model", "tokens"));
    ids.push_back(t.get<int32_t>());
  }
  send_json(res, 200, {{"prompt", tok.decode(ids)}});
}

void handle_metrics(const Context& ctx, const httplib::Request&, httplib::Response& res) {
  const Backend* b = ctx.backend.load();
  runtime::EngineStats stats;
  if (b) stats = b->engine->stats();
  res.set_content(prometheus_text(stats, ctx.options.served_model_name), "text/plain; version=0.0.4");
}

}  // namespace ember::server
