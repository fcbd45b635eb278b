// Conversation rendering (conversation.h).
#include "chat/conversation.h"

namespace ember::chat {

namespace {

constexpr std::string_view kProbe = "ember_probe_7f3a";

Status bad_message(size_t i, std::string_view what) {
  return make_error(ErrorKind::invalid_argument, "messages[{}]: {}", i, what);
}

// content: a string, null, or a list of {type: "text", text} parts.
Status normalize_content(Json& m, size_t i, bool keep_parts) {
  if (!m.contains("content")) return {};
  Json& c = m["content"];
  if (c.is_string() || c.is_null()) return {};
  if (!c.is_array()) return bad_message(i, "content is neither a string, null nor a list of parts");
  std::string joined;
  for (size_t k = 0; k < c.size(); ++k) {
    const Json& part = c[k];
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      return bad_message(i, fmt::format("content[{}] is not an object with a string 'type'", k));
    const std::string type = part["type"].get<std::string>();
    if (type != "text")
      return make_error(ErrorKind::unsupported, "messages[{}]: content part type '{}' is not supported (text only)", i,
                        type);
    if (!part.contains("text") || !part["text"].is_string())
      return bad_message(i, fmt::format("content[{}] has no string 'text'", k));
    if (k > 0) joined += "\n";
    joined += part["text"].get<std::string>();
  }
  if (!keep_parts) c = joined;
  return {};
}

Status normalize_tool_calls(Json& m, size_t i, bool object_args) {
  if (!m.contains("tool_calls") || m["tool_calls"].is_null()) return {};
  Json& calls = m["tool_calls"];
  if (!calls.is_array()) return bad_message(i, "tool_calls is not a list");
  for (size_t k = 0; k < calls.size(); ++k) {
    Json& call = calls[k];
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
      return bad_message(i, fmt::format("tool_calls[{}] has no 'function' object", k));
    Json& f = call["function"];
    if (!f.contains("name") || !f["name"].is_string())
      return bad_message(i, fmt::format("tool_calls[{}].function has no string 'name'", k));
    if (!f.contains("arguments")) f["arguments"] = Json::object();
    Json& args = f["arguments"];
    if (object_args && args.is_string()) {
      Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded() && parsed.is_object()) args = std::move(parsed);
    } else if (!object_args && !args.is_string()) {
      args = args.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
  }
  return {};
}

}  // namespace

Expected<Json> normalize_messages(const Json& messages, bool keep_parts, bool object_args) {
  if (!messages.is_array()) return make_error(ErrorKind::invalid_argument, "messages is not a list");
  Json out = messages;
  for (size_t i = 0; i < out.size(); ++i) {
    Json& m = out[i];
    if (!m.is_object()) return bad_message(i, "is not an object");
    if (!m.contains("role") || !m["role"].is_string() || m["role"].get<std::string>().empty())
      return bad_message(i, "has no string 'role'");
    EMBER_RETURN_IF_ERROR(normalize_content(m, i, keep_parts));
    EMBER_RETURN_IF_ERROR(normalize_tool_calls(m, i, object_args));
    if (m.contains("reasoning_content")) {
      const Json& r = m["reasoning_content"];
      if (!r.is_string() && !r.is_null()) return bad_message(i, "reasoning_content is not a string");
      if (r.is_string() && !m.contains("thinking")) m["thinking"] = r;  // transformers 5 reads 'thinking'
    }
  }
  return out;
}

Json assistant_message(const ParsedOutput& reply) {
  Json m = {{"role", "assistant"}, {"content", reply.content}};
  if (!reply.reasoning_content.empty()) m["reasoning_content"] = reply.reasoning_content;
  if (!reply.tool_calls.empty()) {
    Json calls = Json::array();
    for (const auto& c : reply.tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

Expected<ChatTemplate> ChatTemplate::create(std::string source, std::string bos_token, std::string eos_token,
                                            TemplateOptions options) {
  auto parsed = Template::parse(source, options);
  if (!parsed) return parsed.status();
  ChatTemplate t;
  t.template_ = std::move(*parsed);
  t.source_ = std::move(source);
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);

  // Probes: does a list-of-parts content come through, and are object arguments printed
  // as JSON (not as a Python dict or an error)?
  Conversation c;
  c.messages = Json::array({{{"role", "user"}, {"content", Json::array({{{"type", "text"}, {"text", kProbe}}})}}});
  auto parts = t.render_raw(c, true, true);
  t.content_parts_ = parts.ok() && parts->find(kProbe) != std::string::npos;
  const Json call = {{"id", "call_0"}, {"type", "function"},
                     {"function", {{"name", "probe"}, {"arguments", {{std::string(kProbe), "v"}}}}}};
  c.messages = Json::array({{{"role", "user"}, {"content", "hi"}},
                            {{"role", "assistant"}, {"content", ""}, {"tool_calls", Json::array({call})}},
                            {{"role", "tool"}, {"tool_call_id", "call_0"}, {"content", "ok"}}});
  auto objects = t.render_raw(c, false, true);
  auto strings = t.render_raw(c, false, false);
  const std::string json_key = "\"" + std::string(kProbe) + "\"";
  const bool objects_ok = objects.ok() && objects->find(json_key) != std::string::npos;
  const bool strings_ok = strings.ok() && strings->find(json_key) != std::string::npos;
  t.object_arguments_ = objects_ok || !strings_ok;
  return t;
}

Expected<std::string> ChatTemplate::render_raw(const Conversation& c, bool parts, bool object_args) const {
  auto messages = normalize_messages(c.messages, parts, object_args);
  if (!messages) return messages.status();
  if (!c.tools.is_null() && !c.tools.is_array()) return make_error(ErrorKind::invalid_argument, "tools is not a list");
  if (!c.documents.is_null() && !c.documents.is_array())
    return make_error(ErrorKind::invalid_argument, "documents is not a list");
  if (!c.kwargs.is_object()) return make_error(ErrorKind::invalid_argument, "template kwargs are not an object");
  Json ctx = Json::object();
  ctx["messages"] = std::move(*messages);
  ctx["tools"] = c.tools;
  ctx["documents"] = c.documents;
  ctx["add_generation_prompt"] = c.add_generation_prompt;
  ctx["bos_token"] = bos_;
  ctx["eos_token"] = eos_;
  for (const auto& [key, value] : c.kwargs.items()) {
    if (ctx.contains(key) && (key == "messages" || key == "tools" || key == "documents"))
      return make_error(ErrorKind::invalid_argument, "template kwarg '{}' is reserved", key);
    ctx[key] = value;
  }
  return template_.render(ctx);
}

Expected<std::string> ChatTemplate::render(const Conversation& conversation) const {
  return render_raw(conversation, content_parts_, object_arguments_);
}

std::string bos_text(const tok::Tokenizer& tokenizer) {
  return tokenizer.bos_id() >= 0 ? tokenizer.token_text(tokenizer.bos_id()) : std::string();
}

std::string eos_text(const tok::Tokenizer& tokenizer) {
  return tokenizer.eos_id() >= 0 ? tokenizer.token_text(tokenizer.eos_id()) : std::string();
}

std::vector<int32_t> tokenize_prompt(const tok::Tokenizer& tokenizer, std::string_view prompt) {
  std::vector<int32_t> ids = tokenizer.encode(prompt, false, true);
  const std::string bos = bos_text(tokenizer);
  const bool has_bos_text = !bos.empty() && prompt.substr(0, bos.size()) == bos;
  if (tokenizer.add_bos() && tokenizer.bos_id() >= 0 && !has_bos_text) ids.insert(ids.begin(), tokenizer.bos_id());
  return ids;
}

}  // namespace ember::chat
