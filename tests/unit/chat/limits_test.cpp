// Hostile templates: each must fail with a clear error, quickly, without crashing.
#include <gtest/gtest.h>

#include <chrono>

#include "chat/template.h"

namespace ember::chat {
namespace {

using Json = nlohmann::ordered_json;

struct Failure {
  bool parse_failed = false;
  std::string message;
  double seconds = 0;
};

// Parses and renders `source`; returns why it failed (an empty message means it rendered).
Failure run(const std::string& source, const TemplateOptions& opts = {}, const Json& context = Json::object()) {
  auto start = std::chrono::steady_clock::now();
  Failure f;
  auto t = Template::parse(source, opts);
  if (!t.ok()) {
    f.parse_failed = true;
    f.message = t.status().message();
  } else {
    auto out = t->render(context);
    if (!out.ok()) f.message = out.status().message();
  }
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return f;
}

void expect_render_error(const std::string& source, const std::string& fragment, const Json& context = Json::object()) {
  Failure f = run(source, {}, context);
  EXPECT_FALSE(f.parse_failed) << source << ": " << f.message;
  EXPECT_NE(f.message.find(fragment), std::string::npos) << source << "\n  message: " << f.message;
  EXPECT_LT(f.seconds, 1.0) << source;
}

void expect_syntax_error(const std::string& source, const std::string& fragment) {
  Failure f = run(source);
  EXPECT_TRUE(f.parse_failed) << source.substr(0, 80) << ": " << f.message;
  EXPECT_NE(f.message.find(fragment), std::string::npos) << source.substr(0, 80) << "\n  message: " << f.message;
  EXPECT_LT(f.seconds, 1.0);
}

TEST(ChatLimits, HugeRangeIsRefused) {
  expect_render_error("{% for i in range(10**9) %}x{% endfor %}", "Range too big");
}

TEST(ChatLimits, NestedLoopsHitTheIterationLimit) {
  expect_render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                      "loop iterations exceed");
}

TEST(ChatLimits, RecursiveMacroHitsTheDepthLimit) {
  expect_render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro calls nested deeper");
}

TEST(ChatLimits, FanOutMacroHitsTheCallBudget) {
  expect_render_error(
      "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
      "loop iterations exceed");
}

TEST(ChatLimits, StringRepetitionIsBoundedBeforeAllocating) {
  expect_render_error("{{ 'x' * 10**9 }}", "exceeds the limit");
  expect_render_error("{{ 'x' * 9223372036854775807 }}", "exceeds the limit");
  expect_render_error("{{ [1, 2] * 10**9 }}", "exceeds the limit");
}

TEST(ChatLimits, OutputSizeIsBounded) {
  expect_render_error("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output exceeds the limit");
}

TEST(ChatLimits, DoublingStringsAndListsAreBounded) {
  expect_render_error(
      "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "exceeds the limit");
  expect_render_error(
      "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
      "exceeds the limit");
  expect_render_error(
      "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = [ns.l] %}{% endfor %}",
      "nested too deeply");
}

TEST(ChatLimits, RepeatedBigStringsAreBounded) {
  // Many references to one big string print as one huge repr: refused while being built.
  expect_render_error(
      "{% set s = 'x' * 4000000 %}{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
      "{% set ns.l = ns.l + [s] %}{% endfor %}{{ ns.l }}",
      "limit");
  // Building fresh big strings in a loop runs into the allocation budget.
  expect_render_error(
      "{% set s = 'x' * 4000000 %}{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
      "{% set ns.l = ns.l + [s ~ i] %}{% endfor %}",
      "bytes of text");
  expect_render_error("{{ ('x' * 1000000)|replace('x', 'yyyyyyyyyy') }}", "exceeds the limit");
  expect_render_error("{{ range(10)|join('x' * 4000000) }}", "exceeds the limit");
}

TEST(ChatLimits, WallTimeIsBounded) {
  TemplateOptions opts;
  opts.limits.max_seconds = 0.2;
  // ~1e5 sorts of 1e5 items would take minutes; the deadline stops it.
  Failure f = run("{% set big = range(100000)|list %}{% for i in range(100000) %}{{ (big|sort)[0] }}{% endfor %}",
                  opts);
  EXPECT_NE(f.message.find("took longer"), std::string::npos) << f.message;
  EXPECT_LT(f.seconds, 1.0);
}

TEST(ChatLimits, PrivateAttributesAreRefused) {
  expect_render_error("{{ ''.__class__ }}", "unsafe");
  expect_render_error("{{ ''.__class__.__mro__ }}", "unsafe");
  expect_render_error("{{ [].__len__() }}", "unsafe");
  expect_render_error("{% set ns = namespace() %}{% set ns._x = 1 %}", "underscore");
  expect_render_error("{{ namespace(_x=1) }}", "underscore");
  expect_render_error("{{ range.__globals__ }}", "unsafe");
  expect_render_error("{{ [1].append(2) }}", "unsafe");
  // Dict keys are data: an underscore key is just a key.
  Failure f = run("{{ d._k }}", {}, Json{{"d", {{"_k", "v"}}}});
  EXPECT_TRUE(f.message.empty()) << f.message;
}

TEST(ChatLimits, NamespacesCannotHoldHandles) {
  expect_render_error("{% set ns = namespace() %}{% set ns.self = ns %}", "cannot hold");
  expect_render_error("{% set ns = namespace() %}{% set ns.l = [ns] %}", "cannot hold");
  expect_render_error("{% macro m() %}{% endmacro %}{% set ns = namespace() %}{% set ns.m = m %}", "cannot hold");
}

TEST(ChatLimits, UnterminatedConstructsAreSyntaxErrors) {
  expect_syntax_error("{% if true %}abc", "expected 'elif' or 'else' or 'endif'");
  expect_syntax_error("{% for x in y %}abc", "expected 'else' or 'endfor'");
  expect_syntax_error("{{ 1 + ", "unexpected end of template");
  expect_syntax_error("{# comment", "missing end of comment tag");
  expect_syntax_error("{{ 'abc }}", "unterminated string");
  expect_syntax_error("{% macro m() %}", "endmacro");
  expect_syntax_error("{% raw %}abc", "missing end of raw directive");
  expect_syntax_error("{% endif %}", "unknown tag 'endif'");
  expect_syntax_error("{% include 'x' %}", "not supported");
  expect_syntax_error("{{ a b }}", "expected end of print statement");
  expect_syntax_error("{% break %}", "outside of a loop");
}

TEST(ChatLimits, SyntaxErrorsCarryLineAndColumn) {
  Failure f = run("line one\n{{ ok }}\n  {{ 1 + }}");
  ASSERT_TRUE(f.parse_failed);
  EXPECT_NE(f.message.find("3:"), std::string::npos) << f.message;
}

TEST(ChatLimits, DeeplyNestedExpressionsAreRefused) {
  const std::size_t n = 100000;
  expect_syntax_error("{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}", "nested too deeply");
  expect_syntax_error("{{ " + std::string(n, '[') + std::string(n, ']') + " }}", "nested too deeply");
  std::string sum = "{{ 1";
  for (std::size_t i = 0; i < n; ++i) sum += "+1";
  expect_syntax_error(sum + " }}", "nested too deeply");
  std::string nots = "{{ ";
  for (std::size_t i = 0; i < n; ++i) nots += "not ";
  expect_syntax_error(nots + "x }}", "nested too deeply");
  expect_syntax_error("{{ " + std::string(n, '-') + "1 }}", "nested too deeply");
  std::string attrs = "{{ x";
  for (std::size_t i = 0; i < n; ++i) attrs += ".a";
  expect_syntax_error(attrs + " }}", "nested too deeply");
  std::string filters = "{{ x";
  for (std::size_t i = 0; i < n; ++i) filters += "|trim";
  expect_syntax_error(filters + " }}", "nested too deeply");
}

TEST(ChatLimits, DeeplyNestedBlocksAreRefused) {
  std::string source;
  for (int i = 0; i < 10000; ++i) source += "{% if true %}";
  expect_syntax_error(source, "nested too deeply");
}

TEST(ChatLimits, DeeplyNestedContextIsRefused) {
  Json deep = Json::array();
  for (int i = 0; i < 1000; ++i) deep = Json::array({deep});
  Failure f = run("{{ x|length }}", {}, Json{{"x", deep}});
  EXPECT_NE(f.message.find("nested too deeply"), std::string::npos) << f.message;
}

TEST(ChatLimits, IntegerOverflowIsAnError) {
  expect_render_error("{{ 10 ** 100 }}", "integer overflow");
  expect_render_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
  expect_syntax_error("{{ 99999999999999999999 }}", "too large");
}

TEST(ChatLimits, RaiseExceptionMessageIsPassedThrough) {
  Failure f = run("{{ raise_exception('Conversation roles must alternate') }}");
  EXPECT_EQ(f.message, "Conversation roles must alternate");
}

TEST(ChatLimits, BadOperandsAreErrorsNotCrashes) {
  expect_render_error("{{ x.y }}", "'x' is undefined");
  expect_render_error("{{ none + 1 }}", "unsupported operand");
  expect_render_error("{{ 1 / 0 }}", "division by zero");
  expect_render_error("{{ 5 % 0 }}", "modulo by zero");
  expect_render_error("{{ 'a'[::0] }}", "slice step cannot be zero");
  expect_render_error("{{ 3() }}", "not callable");
  expect_render_error("{% for a, b in [1] %}{% endfor %}", "cannot unpack");
  expect_render_error("{{ '%s' % 1 }}", "not supported");
  expect_render_error("{{ [1, 'a']|sort }}", "not supported between");
  expect_render_error("{{ x|tojson }}", "not JSON serializable");
  expect_render_error("{{ 1|nosuchfilter }}", "No filter named");
  expect_render_error("{{ 1 is nosuchtest }}", "No test named");
}

}  // namespace
}  // namespace ember::chat
