#include <gtest/gtest.h>

#include "server/errors.h"
#include "server/schema.h"

namespace ember::server {
namespace {

Json chat_body(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})}};
  body.update(extra);
  return body;
}

TEST(ChatSchema, DefaultsFollowOpenAI) {
  auto p = parse_chat_request(chat_body());
  ASSERT_TRUE(p.ok()) << p.error.message;
  EXPECT_EQ(p.value.gen.n, 1);
  EXPECT_EQ(p.value.gen.max_tokens, -1);
  EXPECT_FLOAT_EQ(p.value.gen.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(p.value.gen.sampling.top_p, 1.0f);
  EXPECT_EQ(p.value.gen.sampling.top_k, 0);
  EXPECT_FALSE(p.value.gen.has_seed);
  EXPECT_FALSE(p.value.gen.stream);
}

TEST(ChatSchema, ReadsEveryField) {
  auto p = parse_chat_request(chat_body({{"n", 3}, {"max_completion_tokens", 7}, {"temperature", 0.5}, {"top_p", 0.9},
                                         {"top_k", 5}, {"min_p", 0.1}, {"presence_penalty", 1.0},
                                         {"frequency_penalty", -0.5}, {"repetition_penalty", 1.1}, {"seed", 42},
                                         {"stop", {"a", "b"}}, {"logit_bias", {{"15", -100}}}, {"logprobs", true},
                                         {"top_logprobs", 2}, {"stream", true},
                                         {"stream_options", {{"include_usage", true}}}, {"unknown_field", "ignored"}}));
  ASSERT_TRUE(p.ok()) << p.error.message;
  const auto& g = p.value.gen;
  EXPECT_EQ(g.n, 3);
  EXPECT_EQ(g.max_tokens, 7);
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.5f);
  EXPECT_EQ(g.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(g.sampling.presence_penalty, 1.0f);
  EXPECT_FLOAT_EQ(g.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(g.sampling.repeat_penalty, 1.1f);
  EXPECT_TRUE(g.has_seed);
  EXPECT_EQ(g.sampling.seed, 42u);
  EXPECT_EQ(g.stop, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(g.logit_bias.size(), 1u);
  EXPECT_EQ(g.logit_bias[0].first, 15);
  EXPECT_TRUE(g.logprobs);
  EXPECT_EQ(g.top_logprobs, 2);
  EXPECT_TRUE(g.stream);
  EXPECT_TRUE(g.include_usage);
}

TEST(ChatSchema, StopAsString) {
  auto p = parse_chat_request(chat_body({{"stop", "\n"}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value.gen.stop, std::vector<std::string>{"\n"});
}

struct BadCase {
  Json extra;
  std::string param;
};

TEST(ChatSchema, RejectsBadFieldsNamingThem) {
  const std::vector<BadCase> cases = {
      {{{"temperature", 3}}, "temperature"},       {{{"temperature", "hot"}}, "temperature"},
      {{{"max_tokens", -1}}, "max_tokens"},        {{{"max_tokens", 1.5}}, "max_tokens"},
      {{{"n", 0}}, "n"},                           {{{"n", 1000}}, "n"},
      {{{"top_p", 0}}, "top_p"},                   {{{"stop", 5}}, "stop"},
      {{{"stop", {1, 2}}}, "stop"},                {{{"logit_bias", {{"x", 1}}}}, "logit_bias"},
      {{{"logit_bias", {{"5", 200}}}}, "logit_bias"}, {{{"seed", "abc"}}, "seed"},
      {{{"stream", "yes"}}, "stream"},             {{{"messages", Json::array()}}, "messages"},
      {{{"messages", "hi"}}, "messages"},          {{{"top_logprobs", 3}}, "top_logprobs"},
      {{{"tool_choice", "required"}}, "tool_choice"}, {{{"response_format", {{"type", "xml"}}}}, "response_format"},
      {{{"presence_penalty", 5}}, "presence_penalty"},
  };
  for (const auto& c : cases) {
    auto p = parse_chat_request(chat_body(c.extra));
    EXPECT_FALSE(p.ok()) << c.extra.dump();
    EXPECT_EQ(p.error.param, c.param) << c.extra.dump() << ": " << p.error.message;
  }
  auto missing = parse_chat_request(Json{{"model", "m"}});
  EXPECT_EQ(missing.error.param, "messages");
  EXPECT_FALSE(parse_chat_request(Json::array()).ok());
}

TEST(CompletionSchema, PromptShapes) {
  auto s = parse_completion_request({{"prompt", "hello"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value.prompt_text, "hello");
  EXPECT_EQ(s.value.gen.max_tokens, 16);  // the OpenAI default
  auto t = parse_completion_request({{"prompt", {1, 2, 3}}, {"max_tokens", 4}, {"logprobs", 2}, {"echo", true}});
  ASSERT_TRUE(t.ok()) << t.error.message;
  EXPECT_TRUE(t.value.prompt_is_tokens);
  EXPECT_EQ(t.value.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(t.value.gen.max_tokens, 4);
  EXPECT_TRUE(t.value.gen.logprobs);
  EXPECT_EQ(t.value.gen.top_logprobs, 2);
  EXPECT_TRUE(t.value.echo);
  EXPECT_EQ(parse_completion_request(Json::object()).error.param, "prompt");
  EXPECT_EQ(parse_completion_request({{"prompt", {"a", "b"}}}).error.param, "prompt");
  EXPECT_EQ(parse_completion_request({{"prompt", {1, -2}}}).error.param, "prompt");
  EXPECT_EQ(parse_completion_request({{"prompt", "x"}, {"logprobs", 9}}).error.param, "logprobs");
}

TEST(ErrorMapping, OneStatusPerKind) {
  EXPECT_EQ(http_status_for(ErrorKind::invalid_argument), 400);
  EXPECT_EQ(http_status_for(ErrorKind::unsupported), 400);
  EXPECT_EQ(http_status_for(ErrorKind::not_found), 404);
  EXPECT_EQ(http_status_for(ErrorKind::overloaded), 429);
  EXPECT_EQ(http_status_for(ErrorKind::unavailable), 503);
  EXPECT_EQ(http_status_for(ErrorKind::internal), 500);
  EXPECT_EQ(retry_after_seconds(429), 1);
  EXPECT_EQ(retry_after_seconds(400), 0);
}

TEST(ErrorMapping, OpenAIShape) {
  const Json j = error_json(api_error(Status(ErrorKind::invalid_argument, "bad"), "temperature"));
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(j["error"]["code"].is_null());
  const Json auth = error_json(api_error(401, "no key", "", "invalid_api_key"));
  EXPECT_EQ(auth["error"]["type"], "authentication_error");
  EXPECT_TRUE(auth["error"]["param"].is_null());
  EXPECT_EQ(auth["error"]["code"], "invalid_api_key");
}

}  // namespace
}  // namespace ember::server
