// Hand-written checks of the engine's API and semantics. Broad expression, filter and
// whitespace coverage against jinja2 itself lives in fixture_test.cpp (the snippets).
#include <gtest/gtest.h>

#include "chat/template.h"

namespace ember::chat {
namespace {

using Json = nlohmann::ordered_json;

std::string render(const std::string& source, const Json& context = Json::object(), TemplateOptions opts = {}) {
  auto t = Template::parse(source, opts);
  if (!t.ok()) return "PARSE ERROR: " + t.status().message();
  auto out = t->render(context);
  if (!out.ok()) return "RENDER ERROR: " + out.status().message();
  return *out;
}

TEST(ChatTemplate, PrintsValuesLikePython) {
  EXPECT_EQ(render("{{ 1.0 }} {{ 3 / 2 }} {{ 4 / 2 }} {{ true }} {{ none }}"), "1.0 1.5 2.0 True None");
  EXPECT_EQ(render("{{ ['a', 1] }} {{ {'a': 1} }}"), "['a', 1] {'a': 1}");
  EXPECT_EQ(render("{{ x }}", Json{{"x", 1e100}}), "1e+100");
  EXPECT_EQ(render("{{ x }}", Json{{"x", 18446744073709551615ull}}), "1.8446744073709552e+19");
  EXPECT_EQ(render("{{ x }}|{{ x is defined }}|{{ d.y is defined }}", Json{{"d", Json::object()}}), "|False|False");
  EXPECT_NE(render("{{ x.y }}").find("'x' is undefined"), std::string::npos);
}

TEST(ChatTemplate, ToJsonKeepsInsertionOrderAndUnicode) {
  Json ctx = Json::parse(R"({"t": {"z": 1, "a": {"é": "ü\n"}, "m": [1.5, null, true]}})");
  EXPECT_EQ(render("{{ t|tojson }}", ctx), R"({"z": 1, "a": {"é": "ü\n"}, "m": [1.5, null, true]})");
  EXPECT_EQ(render("{{ t.a|tojson(ensure_ascii=true) }}", ctx), R"({"\u00e9": "\u00fc\n"})");
  EXPECT_EQ(render("{{ [1, [2]]|tojson(indent='\\t') }}"), "[\n\t1,\n\t[\n\t\t2\n\t]\n]");
}

TEST(ChatTemplate, WhitespaceControlFollowsOptions) {
  const std::string source = "  {% if true %}\nx\n  {% endif %}\ny";
  EXPECT_EQ(render(source), "x\ny");
  TemplateOptions raw;
  raw.trim_blocks = false;
  raw.lstrip_blocks = false;
  EXPECT_EQ(render(source, Json::object(), raw), "  \nx\n  \ny");
  EXPECT_EQ(render("a {%- if true -%} b {%- endif -%} c"), "abc");
  EXPECT_EQ(render("a\n{{- 'b' -}}\nc"), "abc");
  EXPECT_EQ(render("x\n"), "x");  // jinja2 drops one trailing newline
  EXPECT_EQ(render("x\r\ny"), "x\ny");
}

TEST(ChatTemplate, StrftimeNowUsesTheInjectedTime) {
  TemplateOptions opts;
  std::tm t{};
  t.tm_year = 2025 - 1900;
  t.tm_mon = 0;
  t.tm_mday = 2;
  t.tm_wday = 4;
  opts.fixed_now = t;
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}", Json::object(), opts), "02 Jan 2025");
  EXPECT_EQ(render("{{ strftime_now('') }}", Json::object(), opts), "");
}

TEST(ChatTemplate, LoopsScopesAndNamespaces) {
  EXPECT_EQ(render("{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", Json{{"d", {{"b", 1}, {"a", 2}}}}),
            "b1a2");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}"), "2");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i > 2 %}{% break %}{% endif %}{{ i }}{% endfor %}"), "012");
  EXPECT_EQ(render("{% for m in ms if m.r == 'u' %}{{ loop.index }}/{{ loop.length }} {% endfor %}",
                   Json{{"ms", Json::array({{{"r", "u"}}, {{"r", "a"}}, {{"r", "u"}}})}}),
            "1/2 2/2 ");
}

TEST(ChatTemplate, MacrosCallsAndCaller) {
  EXPECT_EQ(render("{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 3, 4, z=5) }}"),
            "13[4]{'z': 5}");
  EXPECT_EQ(render("{% macro list(items) %}{% for i in items %}<{{ caller(i) }}>{% endfor %}{% endmacro %}"
                   "{% call(x) list([1, 2]) %}{{ x * 10 }}{% endcall %}"),
            "<10><20>");
}

TEST(ChatTemplate, GenerationBlockRendersItsBody) {
  EXPECT_EQ(render("{% generation %}answer{% endgeneration %}"), "answer");
}

TEST(ChatTemplate, TemplateIsReusableAndConst) {
  auto t = Template::parse("{{ a }}");
  ASSERT_TRUE(t.ok());
  const Template& ct = *t;
  EXPECT_EQ(*ct.render(Json{{"a", 1}}), "1");
  EXPECT_EQ(*ct.render(Json{{"a", "two"}}), "two");
  EXPECT_EQ(*ct.render(Json::array()), "");  // a non-object context defines nothing
}

TEST(ChatTemplate, ErrorsHaveKindsAndLines) {
  auto bad = Template::parse("ok\n{% if %}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::invalid_file);
  EXPECT_NE(bad.status().message().find("2:"), std::string::npos) << bad.status().message();
  auto t = Template::parse("a\nb\n{{ 1 / 0 }}");
  ASSERT_TRUE(t.ok());
  auto out = t->render(Json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().kind(), ErrorKind::invalid_argument);
  EXPECT_NE(out.status().message().find("line 3"), std::string::npos) << out.status().message();
}

TEST(ChatTemplate, InvalidUtf8IsCarriedThrough) {
  std::string bad = "a\xff\xfe b";
  EXPECT_EQ(render("{{ s }}|{{ s|length }}|{{ s[1:3]|length }}", Json{{"s", bad}}), bad + "|5|2");
}

}  // namespace
}  // namespace ember::chat
