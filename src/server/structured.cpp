#include "server/structured.h"

#include <fmt/format.h>

#include "grammar/json_schema.h"
#include "grammar/tool_calls.h"

namespace ember::server {

namespace {

ParseError error(std::string message, const char* param) { return {std::move(message), param}; }

const Json* field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

ParseError read_response_format(const Json& rf, GenerationParams& g) {
  const char* param = "response_format";
  if (!rf.is_object() || !field(rf, "type") || !rf["type"].is_string())
    return error("'response_format' must be an object with a string 'type'", param);
  const std::string type = rf["type"].get<std::string>();
  g.response_format = type;
  if (type == "text") return {};
  if (type == "json_object") {
    g.grammar = grammar::json_object_grammar();
    return {};
  }
  if (type != "json_schema")
    return error(fmt::format("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"{}\"",
                             type), param);
  const Json* js = field(rf, "json_schema");
  if (!js || !js->is_object()) return error("'response_format.json_schema' must be an object", param);
  if (const Json* name = field(*js, "name"); name && !name->is_string())
    return error("'response_format.json_schema.name' must be a string", param);
  if (const Json* strict = field(*js, "strict"); strict && !strict->is_boolean())
    return error("'response_format.json_schema.strict' must be a boolean", param);
  const Json* schema = field(*js, "schema");
  if (!schema) return error("'response_format.json_schema.schema' is required", param);
  auto compiled = grammar::compile_json_schema(*schema);
  if (!compiled) return error("'response_format.json_schema.schema': " + compiled.status().message(), param);
  g.grammar = *compiled;
  return {};
}

ParseError read_tool_choice(const Json& choice, ChatRequest& c) {
  const char* param = "tool_choice";
  std::string name;
  if (choice.is_string()) {
    const std::string s = choice.get<std::string>();
    if (s != "auto" && s != "none" && s != "required")
      return error("'tool_choice' must be \"auto\", \"none\", \"required\" or a function", param);
    c.tool_choice = s;
    if (s != "required") return {};
  } else if (choice.is_object()) {
    const Json* fn = field(choice, "function");
    if (choice.value("type", "") != "function" || !fn || !fn->is_object() || !field(*fn, "name") ||
        !(*fn)["name"].is_string())
      return error("'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}", param);
    name = (*fn)["name"].get<std::string>();
    c.tool_choice = "function";
    c.tool_name = name;
  } else {
    return error("'tool_choice' must be a string or an object", param);
  }
  if (c.tools.is_null() || c.tools.empty())
    return error(fmt::format("'tool_choice' {} needs 'tools'", choice.is_string() ? "\"required\"" : "a function"), param);
  if (c.gen.grammar) return error("'tool_choice' \"required\" or a function cannot be combined with 'response_format'", param);
  std::vector<grammar::ToolSchema> tools;
  for (const auto& t : c.tools) {
    const Json* fn = t.is_object() ? field(t, "function") : nullptr;
    if (!fn || !fn->is_object() || !field(*fn, "name") || !(*fn)["name"].is_string())
      return error("each tool must be {\"type\": \"function\", \"function\": {\"name\": ..., \"parameters\": ...}}", "tools");
    tools.push_back({(*fn)["name"].get<std::string>(), field(*fn, "parameters")});
  }
  Expected<std::shared_ptr<const grammar::Grammar>> g = make_error(ErrorKind::internal, "");
  if (c.tool_choice == "required") {
    g = grammar::required_tools_grammar(tools);
  } else {
    auto it = std::find_if(tools.begin(), tools.end(), [&](const grammar::ToolSchema& t) { return t.name == name; });
    if (it == tools.end()) return error(fmt::format("'tool_choice': no tool is named \"{}\"", name), param);
    g = grammar::named_tool_grammar(*it);
  }
  if (!g) return error("'tools': " + g.status().message(), "tools");
  c.gen.grammar = *g;
  return {};
}

}  // namespace ember::server
