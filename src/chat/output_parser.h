// Splits a model's streamed output into content, reasoning and tool calls (docs/chat.md).
//
// Fed text pieces as they are decoded, OutputParser emits deltas; partial markers at the
// end of a piece ("<thi") are held back until the next piece decides them. The result
// never depends on where the text was split: the concatenated deltas of any split equal
// parse_output() of the whole text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ember::chat {

enum class ReasoningSyntax {
  none,
  think_tags,  // <think> ... </think>
  channels,    // <|channel>thought\n ... <channel|> (a standalone <channel|> ends a channel)
};

enum class ToolSyntax {
  none,
  hermes,   // <tool_call>{"name": ..., "arguments": {...}}</tool_call>   (Hermes, Qwen)
  llama3,   // {"name": ..., "parameters": {...}} as the whole reply, or after <|python_tag|>
  mistral,  // [TOOL_CALLS][{"name": ..., "arguments": {...}}]  or  [TOOL_CALLS]name[ARGS]{...}
};

struct OutputFormat {
  ReasoningSyntax reasoning = ReasoningSyntax::none;
  ToolSyntax tools = ToolSyntax::none;
  // The prompt ended inside a reasoning block (e.g. "<think>\n" in the generation prompt
  // of DeepSeek-R1 / Qwen3), so the output starts as reasoning.
  bool starts_in_reasoning = false;
};

// Picks the syntaxes from the template source, and starts_in_reasoning from the rendered
// prompt (an opening marker after the last closing one).
OutputFormat detect_output_format(std::string_view template_source, std::string_view prompt);

struct ToolCall {
  std::string id;         // from the model when it gives one (Mistral), else "call_<index>"
  std::string name;
  std::string arguments;  // a JSON object as text
  bool operator==(const ToolCall&) const = default;
};

struct ChatDelta {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
  bool empty() const { return content.empty() && reasoning_content.empty() && tool_calls.empty(); }
};

struct ParsedOutput {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
  void append(const ChatDelta& d);
};

class OutputParser {
 public:
  explicit OutputParser(OutputFormat format);
  ChatDelta push(std::string_view piece);
  ChatDelta finish();  // end of output: releases held-back text, closes open tool calls
  const ParsedOutput& result() const { return result_; }

 private:
  enum class State { content, reasoning, channel_header, tool_block, tool_rest, llama_json };
  struct Scan;
  void step(bool final, ChatDelta& out);
  bool step_content(bool final, ChatDelta& out);
  bool step_reasoning(bool final, ChatDelta& out);
  bool step_channel_header(bool final);
  bool step_tool_block(bool final, ChatDelta& out);
  bool step_tool_rest(bool final, ChatDelta& out);
  void emit_trimmed(std::string_view text, std::string& held, std::string& out);
  void emit_content(std::string_view text, ChatDelta& out);
  void emit_reasoning(std::string_view text, ChatDelta& out);
  bool emit_calls(std::string_view text, ChatDelta& out, std::string_view raw);
  std::vector<std::string_view> content_markers() const;
  std::string_view reasoning_end() const;

  OutputFormat format_;
  State state_;
  std::string pending_;        // text not yet decided
  std::string reasoning_ws_;   // trailing whitespace of reasoning, held until more follows
  std::string content_ws_;     // the same for content (dropped at the end of the output)
  bool skip_ws_ = false;       // drop whitespace at the start of the current segment
  bool content_started_ = false;
  int n_calls_ = 0;
  ParsedOutput result_;
};

// The whole output at once: the same as one push() and finish().
ParsedOutput parse_output(const OutputFormat& format, std::string_view text);

// Tool calls in `text` for a syntax (the text after the opening marker, or a block's
// body). Returns false when the text is not a valid call list. Exposed for tests.
bool parse_tool_calls(ToolSyntax syntax, std::string_view text, int first_index, std::vector<ToolCall>& out);

}  // namespace ember::chat
