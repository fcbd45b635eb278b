// Grammars for tool_choice (docs/grammar.md), following vLLM: a named function's output is
// its parameters object; "required" is a JSON array of one or more
// {"name": <a tool's name>, "parameters": <that tool's parameters>} objects.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "grammar/json_schema.h"

namespace ember::grammar {

struct ToolSchema {
  std::string name;
  const SchemaJson* parameters = nullptr;  // null: any object; must outlive the call
};

Expected<std::shared_ptr<const Grammar>> named_tool_grammar(const ToolSchema& tool, const SchemaOptions& options = {});
Expected<std::shared_ptr<const Grammar>> required_tools_grammar(const std::vector<ToolSchema>& tools,
                                                                const SchemaOptions& options = {});

}  // namespace ember::grammar
