// response_format and tool_choice required/named (server/structured.cpp).
#include <gtest/gtest.h>

#include "grammar/matcher.h"
#include "server/schema.h"

namespace ember::server {
namespace {

Json body(Json extra) {
  Json b = {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

bool matches(const std::shared_ptr<const grammar::Grammar>& g, const std::string& text) {
  grammar::Matcher m(g);
  return m.accept(text) && m.is_complete();
}

const Json kTools = Json::parse(R"([
  {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
    "properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"]}}},
  {"type":"function","function":{"name":"add","parameters":{"type":"object",
    "properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}}}])");

TEST(ResponseFormat, TextJsonObjectAndJsonSchema) {
  auto text = parse_chat_request(body({{"response_format", {{"type", "text"}}}}));
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(text.value.gen.grammar);
  auto obj = parse_completion_request({{"prompt", "x"}, {"response_format", {{"type", "json_object"}}}});
  ASSERT_TRUE(obj.ok()) << obj.error.message;
  ASSERT_TRUE(obj.value.gen.grammar);
  EXPECT_TRUE(matches(obj.value.gen.grammar, R"({"a": [1, {"b": null}]})"));
  EXPECT_FALSE(matches(obj.value.gen.grammar, "[1]"));
  auto js = parse_chat_request(body({{"response_format",
                                      {{"type", "json_schema"},
                                       {"json_schema", {{"name", "n"}, {"strict", true},
                                                        {"schema", Json::parse(R"({"type":"object","properties":{
                                                          "z":{"type":"integer"},"a":{"type":"boolean"}},
                                                          "required":["z","a"]})")}}}}}}));
  ASSERT_TRUE(js.ok()) << js.error.message;
  EXPECT_TRUE(matches(js.value.gen.grammar, R"({"z": 1, "a": true})"));
  EXPECT_FALSE(matches(js.value.gen.grammar, R"({"a": true, "z": 1})"));  // the order given is kept
}

TEST(ResponseFormat, BadOnesAre400NamingTheField) {
  for (const char* rf : {R"({"type":"xml"})", R"({"type":"json_schema"})", R"({"type":"json_schema","json_schema":{}})",
                         R"({"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}})",
                         R"({"type":"json_schema","json_schema":{"schema":{"$ref":"#"}}})", R"("json")"}) {
    auto p = parse_chat_request(body({{"response_format", Json::parse(rf)}}));
    EXPECT_FALSE(p.ok()) << rf;
    EXPECT_EQ(p.error.param, "response_format") << rf;
  }
  auto p = parse_chat_request(body({{"response_format", Json::parse(
      R"({"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}})")}}));
  EXPECT_NE(p.error.message.find("'pattern'"), std::string::npos) << p.error.message;
}

TEST(ToolChoice, NamedFunctionIsItsParameters) {
  auto p = parse_chat_request(
      body({{"tools", kTools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "add"}}}}}}));
  ASSERT_TRUE(p.ok()) << p.error.message;
  EXPECT_EQ(p.value.tool_choice, "function");
  EXPECT_EQ(p.value.tool_name, "add");
  EXPECT_TRUE(matches(p.value.gen.grammar, R"({"a": 1, "b": -2})"));
  EXPECT_FALSE(matches(p.value.gen.grammar, R"({"city": "Paris"})"));
}

TEST(ToolChoice, RequiredIsAnArrayOfCalls) {
  auto p = parse_chat_request(body({{"tools", kTools}, {"tool_choice", "required"}}));
  ASSERT_TRUE(p.ok()) << p.error.message;
  const auto& g = p.value.gen.grammar;
  EXPECT_TRUE(matches(g, R"([{"name": "add", "parameters": {"a": 1, "b": 2}}])"));
  EXPECT_TRUE(matches(g, R"([{"name":"get_weather","parameters":{"city":"Oslo"}},{"name":"add","parameters":{"a":1,"b":2}}])"));
  EXPECT_FALSE(matches(g, "[]"));
  EXPECT_FALSE(matches(g, R"([{"name": "add", "parameters": {"city": "Oslo"}}])"));
  EXPECT_FALSE(matches(g, R"([{"name": "nope", "parameters": {}}])"));
}

TEST(ToolChoice, Errors) {
  struct Case {
    Json extra;
    std::string param;
  };
  const std::vector<Case> cases = {
      {{{"tools", kTools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "missing"}}}}}}, "tool_choice"},
      {{{"tool_choice", "required"}}, "tool_choice"},
      {{{"tools", kTools}, {"tool_choice", "sometimes"}}, "tool_choice"},
      {{{"tools", kTools}, {"tool_choice", {{"type", "function"}}}}, "tool_choice"},
      {{{"tools", Json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object",
          "properties":{"x":{"type":"string","pattern":"^a"}}}}}])")},
        {"tool_choice", "required"}},
       "tools"},
  };
  for (const auto& c : cases) {
    auto p = parse_chat_request(body(c.extra));
    EXPECT_FALSE(p.ok()) << c.extra.dump();
    EXPECT_EQ(p.error.param, c.param) << c.extra.dump() << ": " << p.error.message;
  }
  auto ok = parse_chat_request(body({{"tools", kTools}, {"tool_choice", "auto"}}));
  EXPECT_TRUE(ok.ok());
  EXPECT_FALSE(ok.value.gen.grammar);
}

}  // namespace
}  // namespace ember::server
