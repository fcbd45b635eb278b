// Conversation rendering: the context transformers builds, the template probes, message
// validation, and prompt tokenization without a double BOS.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "chat/conversation.h"

namespace ember::chat {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/templates/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ChatTemplate make(const std::string& source, std::string bos = "<s>", std::string eos = "</s>") {
  auto t = ChatTemplate::create(source, std::move(bos), std::move(eos));
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(*t);
}

std::string render(const ChatTemplate& t, const Conversation& c) {
  auto out = t.render(c);
  return out.ok() ? *out : "ERROR: " + out.status().message();
}

Json user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }

TEST(Conversation, PassesToolsAndDocumentsAsNoneAndSpecialTokens) {
  auto t = make("{{ tools is none }} {{ documents is none }} {{ bos_token }}{{ eos_token }} {{ add_generation_prompt }}"
                " {{ enable_thinking }}");
  Conversation c;
  c.messages = Json::array({user("hi")});
  c.kwargs = {{"enable_thinking", false}};
  EXPECT_EQ(render(t, c), "True True <s></s> True False");
  c.tools = Json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
  c.add_generation_prompt = false;
  EXPECT_EQ(render(t, c), "False True <s></s> False False");
  c.kwargs = {{"messages", 1}};
  EXPECT_NE(render(t, c).find("reserved"), std::string::npos);
}

TEST(Conversation, MirrorsReasoningContentIntoThinking) {
  auto t = make("{% for m in messages %}[{{ m.thinking }}|{{ m.reasoning_content }}]{% endfor %}");
  Conversation c;
  c.messages = Json::array({user("q"), {{"role", "assistant"}, {"content", "a"}, {"reasoning_content", "why"}}});
  EXPECT_EQ(render(t, c), "[|][why|why]");
}

TEST(Conversation, ContentPartsAreJoinedForTemplatesThatExpectStrings) {
  Conversation c;
  c.messages = Json::array({{{"role", "user"},
                             {"content", Json::array({{{"type", "text"}, {"text", "one"}},
                                                      {{"type", "text"}, {"text", "two"}}})}}});
  auto qwen = make(fixture("qwen3.jinja"));
  EXPECT_FALSE(qwen.accepts_content_parts());
  EXPECT_EQ(render(qwen, c), "<|im_start|>user\none\ntwo<|im_end|>\n<|im_start|>assistant\n");
  auto gemma4 = make(fixture("gemma4-channel.jinja"), "<bos>");
  EXPECT_TRUE(gemma4.accepts_content_parts());
  EXPECT_NE(render(gemma4, c).find("<|turn>user\nonetwo<turn|>"), std::string::npos);
  c.messages[0]["content"][1] = {{"type", "image_url"}, {"image_url", "x"}};
  EXPECT_NE(render(qwen, c).find("'image_url' is not supported"), std::string::npos);
}

Json weather_call(Json arguments) {
  return {{"id", "call_0"}, {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", std::move(arguments)}}}};
}

TEST(Conversation, ToolCallArgumentsBecomeWhatTheTemplateExpects) {
  Conversation c;
  c.messages = Json::array({user("weather?"),
                            {{"role", "assistant"}, {"content", nullptr},
                             {"tool_calls", Json::array({weather_call(R"({"city": "Paris"})")})}},
                            {{"role", "tool"}, {"tool_call_id", "call_0"}, {"content", "sunny"}}});
  // Llama 3.1 prints arguments with |tojson: a JSON string must become an object first.
  auto llama = make(fixture("llama3.1.jinja"), "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_TRUE(llama.accepts_object_arguments());
  EXPECT_NE(render(llama, c).find(R"("parameters": {"city": "Paris"})"), std::string::npos) << render(llama, c);
  // DeepSeek-R1 concatenates arguments as a string: objects must become JSON text.
  auto r1 = make(fixture("deepseek-r1-distill.jinja"));
  EXPECT_FALSE(r1.accepts_object_arguments());
  c.messages[1]["tool_calls"][0] = weather_call({{"city", "Paris"}});
  EXPECT_NE(render(r1, c).find("```json\n{\"city\":\"Paris\"}\n```"), std::string::npos) << render(r1, c);
}

TEST(Conversation, MalformedMessagesNameTheMessageAndField) {
  auto t = make(fixture("smollm2.jinja"));
  Conversation c;
  c.messages = Json::object();
  EXPECT_NE(render(t, c).find("messages is not a list"), std::string::npos);
  c.messages = Json::array({user("a"), {{"content", "x"}}});
  EXPECT_NE(render(t, c).find("messages[1]: has no string 'role'"), std::string::npos);
  c.messages = Json::array({{{"role", "user"}, {"content", 5}}});
  EXPECT_NE(render(t, c).find("messages[0]: content"), std::string::npos);
  c.messages = Json::array({{{"role", "assistant"}, {"tool_calls", Json::array({{{"id", "x"}}})}}});
  EXPECT_NE(render(t, c).find("tool_calls[0]"), std::string::npos);
  c.messages = Json::array({user("a")});
  c.tools = "nope";
  EXPECT_NE(render(t, c).find("tools is not a list"), std::string::npos);
}

TEST(Conversation, AssistantMessageRoundTripsThroughQwen3) {
  ParsedOutput reply;
  reply.content = "It is sunny.";
  reply.reasoning_content = "check";
  reply.tool_calls.push_back({"call_0", "get_weather", R"({"city":"Paris"})"});
  const Json m = assistant_message(reply);
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  auto qwen = make(fixture("qwen3.jinja"));
  Conversation c;
  c.messages = Json::array({user("weather?"), m});
  c.add_generation_prompt = false;
  EXPECT_EQ(render(qwen, c),
            "<|im_start|>user\nweather?<|im_end|>\n<|im_start|>assistant\n<think>\ncheck\n</think>\n\nIt is sunny.\n"
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n");
  c.add_generation_prompt = true;
  c.kwargs = {{"enable_thinking", false}};
  const std::string prompt = render(qwen, c);
  EXPECT_TRUE(prompt.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(qwen.output_format(prompt).starts_in_reasoning);
}

TEST(Conversation, TokenizePromptAddsBosOnlyWhenTheTextLacksIt) {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not present: " << path;
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok());
  auto tok = tok::Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok());
  ASSERT_TRUE(tok->add_bos());
  EXPECT_EQ(bos_text(*tok), "<bos>");
  auto gemma3 = make(fixture("gemma3.jinja"), bos_text(*tok), eos_text(*tok));
  Conversation c;
  c.messages = Json::array({user("hi")});
  const std::string prompt = render(gemma3, c);
  ASSERT_TRUE(prompt.starts_with("<bos>"));
  const auto ids = tokenize_prompt(*tok, prompt);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], tok->bos_id());
  EXPECT_NE(ids[1], tok->bos_id());  // no double BOS
  const auto bare = tokenize_prompt(*tok, "<start_of_turn>user\nhi");
  EXPECT_EQ(bare[0], tok->bos_id());
  EXPECT_EQ(bare[1], *tok->find_token("<start_of_turn>"));
}

}  // namespace
}  // namespace ember::chat
