// Tool-call bodies in the syntaxes models are trained on (output_parser.h).
#include <nlohmann/json.hpp>

#include "chat/output_parser.h"

namespace ember::chat {

namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxNameBytes = 256;

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// One past the end of the JSON object/array starting at s[start], or npos when it does
// not close. Only brackets and strings matter here; nlohmann validates the rest.
size_t json_value_end(std::string_view s, size_t start) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = start; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

// The arguments as a JSON object's text: an object, or a string holding one.
bool arguments_text(const Json& args, std::string& out) {
  if (args.is_object()) {
    out = dump(args);
    return true;
  }
  if (!args.is_string()) return false;
  const Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return false;
  out = dump(parsed);
  return true;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameBytes && name.find_first_of(" \n\r\t") == std::string_view::npos;
}

// {"name": ..., "arguments"|"parameters": {...}, "id"?: ...}; also OpenAI's
// {"function": {"name": ..., "arguments": ...}}.
bool call_from_object(const Json& o, int index, ToolCall& call) {
  if (!o.is_object()) return false;
  const Json* f = &o;
  if (o.contains("function") && o["function"].is_object()) f = &o["function"];
  if (!f->contains("name") || !(*f)["name"].is_string()) return false;
  call.name = (*f)["name"].get<std::string>();
  if (!valid_name(call.name)) return false;
  if (f->contains("arguments")) {
    if (!arguments_text((*f)["arguments"], call.arguments)) return false;
  } else if (f->contains("parameters")) {
    if (!arguments_text((*f)["parameters"], call.arguments)) return false;
  } else {
    call.arguments = "{}";
  }
  const bool has_id = o.contains("id") && o["id"].is_string() && !o["id"].get<std::string>().empty();
  call.id = has_id ? o["id"].get<std::string>() : "call_" + std::to_string(index);
  return true;
}

// One or more JSON objects/arrays of calls, separated by whitespace, ';' or ','.
bool parse_json_calls(std::string_view text, int index, std::vector<ToolCall>& out) {
  const size_t n_before = out.size();
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ';' || c == ',') {
      ++i;
      continue;
    }
    if (c != '{' && c != '[') return false;
    const size_t end = json_value_end(text, i);
    if (end == std::string_view::npos) return false;
    const Json v = Json::parse(text.substr(i, end - i), nullptr, false);
    if (v.is_discarded()) return false;
    const Json list = v.is_array() ? v : Json::array({v});
    for (const auto& item : list) {
      ToolCall call;
      if (!call_from_object(item, index + int(out.size() - n_before), call)) return false;
      out.push_back(std::move(call));
    }
    i = end;
  }
  return out.size() > n_before;
}

// "name[ARGS]{...}" or "name[CALL_ID]id[ARGS]{...}" (Mistral's newer templates).
bool parse_mistral_named(std::string_view seg, int index, std::vector<ToolCall>& out) {
  constexpr std::string_view kArgs = "[ARGS]", kCallId = "[CALL_ID]";
  const size_t a = seg.find(kArgs);
  if (a == std::string_view::npos) return false;
  std::string_view head = trim(seg.substr(0, a));
  const std::string_view args = trim(seg.substr(a + kArgs.size()));
  ToolCall call;
  call.id = "call_" + std::to_string(index);
  if (const size_t c = head.find(kCallId); c != std::string_view::npos) {
    const std::string_view id = trim(head.substr(c + kCallId.size()));
    if (!id.empty()) call.id = std::string(id);
    head = trim(head.substr(0, c));
  }
  call.name = std::string(head);
  if (!valid_name(call.name) || args.empty() || args[0] != '{' || json_value_end(args, 0) != args.size()) return false;
  const Json v = Json::parse(args, nullptr, false);
  if (v.is_discarded() || !arguments_text(v, call.arguments)) return false;
  out.push_back(std::move(call));
  return true;
}

bool parse_mistral(std::string_view text, int index, std::vector<ToolCall>& out) {
  constexpr std::string_view kMarker = "[TOOL_CALLS]";
  const size_t n_before = out.size();
  while (!text.empty()) {
    const size_t next = text.find(kMarker);
    const std::string_view seg = trim(text.substr(0, next));
    text = next == std::string_view::npos ? std::string_view() : text.substr(next + kMarker.size());
    if (seg.empty()) continue;
    const int at = index + int(out.size() - n_before);
    const bool ok = seg[0] == '[' || seg[0] == '{' ? parse_json_calls(seg, at, out) : parse_mistral_named(seg, at, out);
    if (!ok) return false;
  }
  return out.size() > n_before;
}

}  // namespace

bool parse_tool_calls(ToolSyntax syntax, std::string_view text, int first_index, std::vector<ToolCall>& out) {
  std::vector<ToolCall> calls;
  const std::string_view t = trim(text);
  bool ok = false;
  switch (syntax) {
    case ToolSyntax::none: return false;
    case ToolSyntax::hermes: {
      const Json v = Json::parse(t, nullptr, false);
      ToolCall call;
      ok = !v.is_discarded() && call_from_object(v, first_index, call);
      if (ok) calls.push_back(std::move(call));
      break;
    }
    case ToolSyntax::llama3:
      if (!t.empty() && t[0] != '{' && t[0] != '[') {
        // <|python_tag|> followed by code: the built-in code interpreter.
        calls.push_back({"call_" + std::to_string(first_index), "python", dump(Json{{"code", std::string(t)}})});
        ok = true;
      } else {
        ok = parse_json_calls(t, first_index, calls);
      }
      break;
    case ToolSyntax::mistral: ok = parse_mistral(t, first_index, calls); break;
  }
  if (!ok) return false;
  out.insert(out.end(), calls.begin(), calls.end());
  return true;
}

}  // namespace ember::chat
