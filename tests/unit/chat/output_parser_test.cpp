// The streaming output parser: expected results for each syntax, and for every case,
// every split point and many random multi-splits, streamed deltas == whole-text parse.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "chat/output_parser.h"

namespace ember::chat {
namespace {

struct Case {
  OutputFormat format;
  std::string text;
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> calls;
};

OutputFormat fmt_of(ReasoningSyntax r, ToolSyntax t, bool starts_in_reasoning = false) {
  OutputFormat f;
  f.reasoning = r;
  f.tools = t;
  f.starts_in_reasoning = starts_in_reasoning;
  return f;
}

const auto kThink = fmt_of(ReasoningSyntax::think_tags, ToolSyntax::none);
const auto kThinkOpen = fmt_of(ReasoningSyntax::think_tags, ToolSyntax::none, true);
const auto kChannels = fmt_of(ReasoningSyntax::channels, ToolSyntax::none);
const auto kChannelsOpen = fmt_of(ReasoningSyntax::channels, ToolSyntax::none, true);
const auto kQwen = fmt_of(ReasoningSyntax::think_tags, ToolSyntax::hermes);
const auto kLlama = fmt_of(ReasoningSyntax::none, ToolSyntax::llama3);
const auto kMistral = fmt_of(ReasoningSyntax::none, ToolSyntax::mistral);
const auto kPlain = fmt_of(ReasoningSyntax::none, ToolSyntax::none);

ToolCall call(std::string id, std::string name, std::string args) { return {std::move(id), std::move(name), std::move(args)}; }

std::vector<Case> cases() {
  return {
      {kPlain, "Hello <think>world</think>", "Hello <think>world</think>", "", {}},
      {kThink, "<think>\nLet me think.\n</think>\n\nThe answer is 4.", "The answer is 4.", "Let me think.", {}},
      {kThink, "No reasoning here, just <b>tags</b> and <th", "No reasoning here, just <b>tags</b> and <th", "", {}},
      {kThink, "<think>unfinished  \n", "", "unfinished", {}},
      {kThink, "a</think>b", "a</think>b", "", {}},
      {kThink, "A <think>x\n\ny </think> B", "A B", "x\n\ny", {}},
      {kThink, "<think></think>", "", "", {}},
      {kThinkOpen, "Hmm, ok.\n</think>\n\nHi there!\n", "Hi there!", "Hmm, ok.", {}},
      {kThinkOpen, "all reasoning, no end <", "", "all reasoning, no end <", {}},
      {kThinkOpen, "\n\n</think>\n\nQuick answer.", "Quick answer.", "", {}},
      {kChannels, "<|channel>thought\nI think.<channel|>Final answer.", "Final answer.", "I think.", {}},
      {kChannels, "Answer<channel|> more", "Answer more", "", {}},
      {kChannels, "<|channel>final\nHello<channel|>", "Hello", "", {}},
      {kChannels, "<|channel>thought<channel|>Direct.", "Direct.", "", {}},
      {kChannels, "<|channel>thought\nA<|channel>thought\nB<channel|>C", "C", "AB", {}},
      {kChannels, "<|channel>" + std::string(100, 'x'), std::string(100, 'x'), "", {}},
      {kChannels, "<|channel>thoug", "thoug", "", {}},
      {kChannelsOpen, "thinking...\n<channel|>Done.", "Done.", "thinking...", {}},
      {kQwen,
       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
       "Let me check.", "", {call("call_0", "get_weather", R"({"city":"Paris"})")}},
      {kQwen,
       "<think>\nneed tools\n</think>\n\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
       "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": [1, 2]}\"}\n</tool_call>",
       "", "need tools", {call("call_0", "a", "{}"), call("call_1", "b", R"({"x":[1,2]})")}},
      {kQwen, "<tool_call>{bad json}</tool_call> after", "<tool_call>{bad json}</tool_call> after", "", {}},
      {kQwen, "<tool_call>\n{\"name\":\"f\",\"arguments\":{\"q\":\"</tool\"}}", "", "",
       {call("call_0", "f", R"({"q":"</tool"})")}},
      {kQwen, "x <tool_call>{\"name\": 1}", "x <tool_call>{\"name\": 1}", "", {}},
      {kQwen, "A\n<tool_call>{\"name\":\"f\"}</tool_call>\nB", "A\nB", "", {call("call_0", "f", "{}")}},
      {kLlama, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "",
       {call("call_0", "get_weather", R"({"city":"Paris"})")}},
      {kLlama, "  \n{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": true}}", "", "",
       {call("call_0", "a", "{}"), call("call_1", "b", R"({"k":true})")}},
      {kLlama, "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"n\": 2}}", "", "",
       {call("call_0", "f", R"({"n":2})")}},
      {kLlama, "<|python_tag|>print(1 + 1)", "", "", {call("call_0", "python", R"x({"code":"print(1 + 1)"})x")}},
      {kLlama, "{not json at all}", "{not json at all}", "", {}},
      {kLlama, "Hello {\"name\": \"f\", \"parameters\": {}}", "Hello {\"name\": \"f\", \"parameters\": {}}", "", {}},
      {kLlama, "Sure: <|python_tag|>", "Sure: <|python_tag|>", "", {}},
      {kMistral, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}, \"id\": \"abc123def\"}]", "", "",
       {call("abc123def", "f", R"({"a":1})")}},
      {kMistral, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"z\": null}}]",
       "", "", {call("call_0", "f", "{}"), call("call_1", "g", R"({"z":null})")}},
      {kMistral, "[TOOL_CALLS]f[ARGS]{\"a\": \"[TOOL\"}[TOOL_CALLS]g[ARGS]{}", "", "",
       {call("call_0", "f", R"({"a":"[TOOL"})"), call("call_1", "g", "{}")}},
      {kMistral, "[TOOL_CALLS]f[CALL_ID]x1y2z3w4v[ARGS]{\"q\": 1}", "", "", {call("x1y2z3w4v", "f", R"({"q":1})")}},
      {kMistral, "Sure. [TOOL_CALLS]f[ARGS]{bad", "Sure. [TOOL_CALLS]f[ARGS]{bad", "", {}},
      {kMistral, "[TOOL_CAL is not a marker", "[TOOL_CAL is not a marker", "", {}},
      {kQwen, "Unicode: caf\xc3\xa9 <think>\xe2\x9c\x93</think> done", "Unicode: caf\xc3\xa9 done", "\xe2\x9c\x93", {}},
  };
}

ParsedOutput stream(const OutputFormat& f, const std::string& text, const std::vector<size_t>& cuts) {
  OutputParser p(f);
  ParsedOutput from_deltas;
  size_t prev = 0;
  for (size_t c : cuts) {
    from_deltas.append(p.push(std::string_view(text).substr(prev, c - prev)));
    prev = c;
  }
  from_deltas.append(p.push(std::string_view(text).substr(prev)));
  from_deltas.append(p.finish());
  EXPECT_EQ(from_deltas.content, p.result().content);
  EXPECT_EQ(from_deltas.reasoning_content, p.result().reasoning_content);
  EXPECT_EQ(from_deltas.tool_calls, p.result().tool_calls);
  return from_deltas;
}

std::string show(const ParsedOutput& p) {
  std::string s = "content=[" + p.content + "] reasoning=[" + p.reasoning_content + "] calls=";
  for (const auto& c : p.tool_calls) s += c.id + ":" + c.name + c.arguments + " ";
  return s;
}

void expect_same(const ParsedOutput& a, const ParsedOutput& b, const std::string& where) {
  EXPECT_EQ(show(a), show(b)) << where;
}

TEST(OutputParser, WholeTextGivesTheExpectedParts) {
  for (const auto& c : cases()) {
    const ParsedOutput p = parse_output(c.format, c.text);
    EXPECT_EQ(p.content, c.content) << c.text;
    EXPECT_EQ(p.reasoning_content, c.reasoning) << c.text;
    EXPECT_EQ(p.tool_calls, c.calls) << c.text;
  }
}

TEST(OutputParser, EverySplitPointGivesTheWholeTextResult) {
  for (const auto& c : cases()) {
    const ParsedOutput whole = parse_output(c.format, c.text);
    for (size_t i = 0; i <= c.text.size(); ++i) expect_same(stream(c.format, c.text, {i}), whole, c.text + " @" + std::to_string(i));
    std::vector<size_t> bytes;  // one byte per push
    for (size_t i = 1; i < c.text.size(); ++i) bytes.push_back(i);
    expect_same(stream(c.format, c.text, bytes), whole, c.text + " bytewise");
  }
}

TEST(OutputParser, RandomMultiSplitsGiveTheWholeTextResult) {
  std::mt19937 rng(12345);
  for (const auto& c : cases()) {
    const ParsedOutput whole = parse_output(c.format, c.text);
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<size_t> cuts;
      const size_t n_cuts = rng() % 8;
      for (size_t k = 0; k < n_cuts; ++k) cuts.push_back(c.text.empty() ? 0 : rng() % (c.text.size() + 1));
      std::sort(cuts.begin(), cuts.end());
      expect_same(stream(c.format, c.text, cuts), whole, c.text + " trial " + std::to_string(trial));
    }
  }
}

TEST(OutputParser, EveryFormatOnEveryTextSplitsConsistently) {
  // Texts written for one syntax, parsed with every other: no split may change the result.
  const std::vector<OutputFormat> formats{kPlain, kThink, kThinkOpen, kChannels, kChannelsOpen, kQwen, kLlama, kMistral};
  for (const auto& c : cases())
    for (const auto& f : formats) {
      const ParsedOutput whole = parse_output(f, c.text);
      for (size_t i = 0; i <= c.text.size(); ++i) expect_same(stream(f, c.text, {i}), whole, c.text);
    }
}

TEST(OutputParser, RandomMarkerSoupSplitsConsistently) {
  // Random texts built from markers, their fragments and JSON bits, in every syntax.
  const std::vector<std::string> atoms{"<think>", "</think>", "<th", "ink>", "<tool_call>", "</tool_call>",
                                       "{\"name\": \"f\", \"arguments\": {}}", "[TOOL_CALLS]", "[ARGS]", "g",
                                       "<|channel>", "thought\n", "<channel|>", "<|python_tag|>", " ", "\n", "x",
                                       "{", "}", "[", "]", "\"", "<", "|", ">"};
  const std::vector<OutputFormat> formats{kPlain, kThink, kThinkOpen, kChannels, kChannelsOpen, kQwen, kLlama, kMistral};
  std::mt19937 rng(777);
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const size_t n_atoms = 1 + rng() % 12;
    for (size_t k = 0; k < n_atoms; ++k) text += atoms[rng() % atoms.size()];
    for (const auto& f : formats) {
      const ParsedOutput whole = parse_output(f, text);
      for (size_t i = 0; i <= text.size(); ++i) expect_same(stream(f, text, {i}), whole, text);
      std::vector<size_t> cuts;
      for (size_t k = 0; k < 4; ++k) cuts.push_back(rng() % (text.size() + 1));
      std::sort(cuts.begin(), cuts.end());
      expect_same(stream(f, text, cuts), whole, text);
    }
  }
}

TEST(OutputParser, HoldsBackPartialMarkersOnly) {
  OutputParser p(kThink);
  EXPECT_EQ(p.push("Hello <thi").content, "Hello");  // the space waits for more text too
  EXPECT_EQ(p.push("s is not a tag").content, " <this is not a tag");
  OutputParser q(kQwen);
  EXPECT_EQ(q.push("<think>abc").reasoning_content, "abc");
  auto d = q.push("</think>ok <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_");
  EXPECT_EQ(d.content, "ok");
  EXPECT_TRUE(d.tool_calls.empty());
  d = q.push("call>");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].name, "f");
}

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/templates/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(OutputFormat, DetectedFromRealTemplates) {
  auto qwen3 = detect_output_format(fixture("qwen3.jinja"), "<|im_start|>assistant\n");
  EXPECT_EQ(qwen3.reasoning, ReasoningSyntax::think_tags);
  EXPECT_EQ(qwen3.tools, ToolSyntax::hermes);
  EXPECT_FALSE(qwen3.starts_in_reasoning);
  EXPECT_FALSE(detect_output_format(fixture("qwen3.jinja"), "assistant\n<think>\n\n</think>\n\n").starts_in_reasoning);
  auto r1 = detect_output_format(fixture("deepseek-r1-distill.jinja"), "<｜Assistant｜><think>\n");
  EXPECT_EQ(r1.reasoning, ReasoningSyntax::think_tags);
  EXPECT_TRUE(r1.starts_in_reasoning);
  auto gemma4 = detect_output_format(fixture("gemma4-channel.jinja"), "<|turn>model\n<|channel>thought\n<channel|>");
  EXPECT_EQ(gemma4.reasoning, ReasoningSyntax::channels);
  EXPECT_FALSE(gemma4.starts_in_reasoning);
  EXPECT_TRUE(detect_output_format(fixture("gemma4-channel.jinja"), "<|channel>thought\n").starts_in_reasoning);
  EXPECT_EQ(detect_output_format(fixture("mistral-v7.jinja"), "").tools, ToolSyntax::mistral);
  EXPECT_EQ(detect_output_format(fixture("llama3.1.jinja"), "").tools, ToolSyntax::llama3);
  EXPECT_EQ(detect_output_format(fixture("qwen2.5.jinja"), "").tools, ToolSyntax::hermes);
  auto smol = detect_output_format(fixture("smollm2.jinja"), "");
  EXPECT_EQ(smol.reasoning, ReasoningSyntax::none);
  EXPECT_EQ(smol.tools, ToolSyntax::none);
  EXPECT_EQ(detect_output_format(fixture("gemma3.jinja"), "").tools, ToolSyntax::none);
}

}  // namespace
}  // namespace ember::chat
