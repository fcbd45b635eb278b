#include "grammar/tool_calls.h"

#include <fmt/format.h>

namespace ember::grammar {

namespace {

Expected<uint32_t> parameters_rule(SchemaCompiler& c, const ToolSchema& tool) {
  if (!tool.parameters) return c.any_object();
  auto r = c.value(*tool.parameters, *tool.parameters);
  if (!r) return Status(r.status().kind(), fmt::format("function '{}': parameters: {}", tool.name, r.status().message()));
  return *r;
}

}  // namespace

Expected<std::shared_ptr<const Grammar>> named_tool_grammar(const ToolSchema& tool, const SchemaOptions& options) {
  SchemaCompiler c(options);
  auto params = parameters_rule(c, tool);
  if (!params) return params.status();
  Grammar& g = c.grammar();
  const uint32_t root = g.add_rule("root");
  g.add_alternative(root, {Grammar::ref(c.ws()), Grammar::ref(*params)});
  return c.finish(root);
}

// root ::= ws "[" ws call ws ("," ws call ws)* "]"
// call ::= "{" ws "\"name\"" ws ":" ws "\"f\"" ws "," ws "\"parameters\"" ws ":" ws P_f ws "}" | ...
Expected<std::shared_ptr<const Grammar>> required_tools_grammar(const std::vector<ToolSchema>& tools,
                                                                const SchemaOptions& options) {
  if (tools.empty()) return make_error(ErrorKind::invalid_argument, "no tools to call");
  SchemaCompiler c(options);
  Grammar& g = c.grammar();
  const Element w = Grammar::ref(c.ws());
  auto lit = [&](std::string_view s) { return Grammar::ref(c.literal(s)); };
  const uint32_t call = g.add_rule("call");
  for (const ToolSchema& tool : tools) {
    auto params = parameters_rule(c, tool);
    if (!params) return params.status();
    g.add_alternative(call, {lit("{"), w, lit("\"name\""), w, lit(":"), w, lit(SchemaJson(tool.name).dump()), w,
                             lit(","), w, lit("\"parameters\""), w, lit(":"), w, Grammar::ref(*params), w, lit("}")});
  }
  const uint32_t more = g.add_rule("more-calls");
  g.add_alternative(more, {});
  g.add_alternative(more, {lit(","), w, Grammar::ref(call), w, Grammar::ref(more)});
  const uint32_t root = g.add_rule("root");
  g.add_alternative(root, {w, lit("["), w, Grammar::ref(call), w, Grammar::ref(more), lit("]")});
  return c.finish(root);
}

}  // namespace ember::grammar
