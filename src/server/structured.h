// response_format and tool_choice "required"/named: the request fields that constrain the
// output to a grammar (docs/server.md, docs/grammar.md). Used by schema.cpp.
#pragma once
#include <string>

#include "server/schema.h"

namespace ember::server {

// Reads `response_format` into g.grammar; an error names the field in `param`.
ParseError read_response_format(const Json& response_format, GenerationParams& g);
// Reads `tool_choice` (a string or {"type":"function","function":{"name":...}}) against
// c.tools; "required" and a named function set c.gen.grammar.
ParseError read_tool_choice(const Json& tool_choice, ChatRequest& c);

}  // namespace ember::server
