#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include <chrono>

#include "unit/grammar/test_util.h"

namespace ember::grammar {
namespace {

using test::compile;
using test::compile_error;
using test::matches;
using test::prefix_ok;

TEST(JsonSchema, Types) {
  auto s = compile(R"({"type":"string"})");
  EXPECT_TRUE(matches(s, R"("hello")"));
  EXPECT_TRUE(matches(s, R"("")"));
  EXPECT_TRUE(matches(s, R"("a\"b\\c\n\u00e9 é 日本 😀")"));
  EXPECT_FALSE(matches(s, R"("abc)"));
  EXPECT_FALSE(matches(s, "\"a\nb\""));        // raw control character
  EXPECT_FALSE(matches(s, R"("\x")"));         // bad escape
  EXPECT_FALSE(matches(s, "\"\xc3\x28\""));    // bad UTF-8
  EXPECT_FALSE(matches(s, "\"\xed\xa0\x80\""));  // a surrogate in UTF-8
  EXPECT_FALSE(matches(s, "\"\xc0\xaf\""));    // overlong
  EXPECT_FALSE(matches(s, "42"));

  auto i = compile(R"({"type":"integer"})");
  for (const char* ok : {"0", "-7", "123456789", "-1000"}) EXPECT_TRUE(matches(i, ok)) << ok;
  for (const char* bad : {"01", "1.5", "-", "+1", "1e3", "\"1\""}) EXPECT_FALSE(matches(i, bad)) << bad;

  auto n = compile(R"({"type":"number"})");
  for (const char* ok : {"0", "-0.5", "3.25e10", "1E-3", "2e+2", "10"}) EXPECT_TRUE(matches(n, ok)) << ok;
  for (const char* bad : {".5", "1.", "1e", "00", "--1", "NaN"}) EXPECT_FALSE(matches(n, bad)) << bad;

  auto b = compile(R"({"type":"boolean"})");
  EXPECT_TRUE(matches(b, "true"));
  EXPECT_TRUE(matches(b, "false"));
  EXPECT_FALSE(matches(b, "null"));
  auto z = compile(R"({"type":"null"})");
  EXPECT_TRUE(matches(z, "null"));
  EXPECT_FALSE(matches(z, "0"));

  auto multi = compile(R"({"type":["string","null"]})");
  EXPECT_TRUE(matches(multi, "null"));
  EXPECT_TRUE(matches(multi, R"("x")"));
  EXPECT_FALSE(matches(multi, "1"));
}

TEST(JsonSchema, NumbersAreBoundedInLength) {
  auto i = compile(R"({"type":"integer"})");
  EXPECT_TRUE(matches(i, std::string(19, '9')));
  EXPECT_FALSE(prefix_ok(i, std::string(21, '9')));
}

TEST(JsonSchema, ObjectPropertiesInOrder) {
  auto g = compile(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
                     "tags":{"type":"array","items":{"type":"string"}}},"required":["name","age"]})");
  EXPECT_TRUE(matches(g, R"({"name":"Ann","age":3})"));
  EXPECT_TRUE(matches(g, R"({"name": "Ann", "age": 3, "tags": ["a", "b"]})"));
  EXPECT_TRUE(matches(g, "{\n  \"name\": \"Ann\",\n  \"age\": 3\n}"));
  EXPECT_FALSE(matches(g, R"({"age":3,"name":"Ann"})"));   // order as given
  EXPECT_FALSE(matches(g, R"({"name":"Ann"})"));           // age is required
  EXPECT_FALSE(matches(g, R"({"name":"Ann","age":3,})"));  // trailing comma
  EXPECT_FALSE(matches(g, R"({"name":"Ann","age":3,"x":1})"));  // additionalProperties: false by default
  EXPECT_FALSE(prefix_ok(g, R"({"nam )"));
  EXPECT_TRUE(prefix_ok(g, R"({"name":"An)"));
}

TEST(JsonSchema, OptionalPropertiesAnywhere) {
  auto g = compile(R"({"properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},
                     "required":["b"]})");
  for (const char* ok : {R"({"b":1})", R"({"a":1,"b":2})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3})"})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {R"({})", R"({"a":1})", R"({"a":1,"c":3})", R"({"c":3,"b":2})", R"({,"b":2})"})
    EXPECT_FALSE(matches(g, bad)) << bad;
}

TEST(JsonSchema, AdditionalProperties) {
  auto any = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true})");
  EXPECT_TRUE(matches(any, R"({"a":1,"zz":[1,{"q":null}]})"));
  EXPECT_TRUE(matches(any, R"({"zz":"x"})"));
  auto typed = compile(R"({"type":"object","additionalProperties":{"type":"number"}})");
  EXPECT_TRUE(matches(typed, R"({"x":1.5,"y":2})"));
  EXPECT_FALSE(matches(typed, R"({"x":"no"})"));
  auto none = compile(R"({"type":"object","additionalProperties":false})");
  EXPECT_TRUE(matches(none, "{}"));
  EXPECT_FALSE(matches(none, R"({"a":1})"));
  auto bare = compile(R"({"type":"object"})");
  EXPECT_TRUE(matches(bare, R"({"k":[true,false,null,"s",-1.5e3]})"));
  EXPECT_FALSE(matches(bare, "[]"));
}

TEST(JsonSchema, Arrays) {
  auto g = compile(R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3})");
  EXPECT_TRUE(matches(g, "[1,2]"));
  EXPECT_TRUE(matches(g, "[1, 2, 3]"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, "[1,2,3,4]"));
  EXPECT_FALSE(matches(g, "[]"));
  auto unbounded = compile(R"({"type":"array","items":{"type":"boolean"}})");
  EXPECT_TRUE(matches(unbounded, "[]"));
  EXPECT_TRUE(matches(unbounded, "[true,false,true,true,false]"));
  EXPECT_FALSE(matches(unbounded, "[true,1]"));
  auto tuple = compile(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false,
                         "minItems":1})");
  EXPECT_TRUE(matches(tuple, R"(["a"])"));
  EXPECT_TRUE(matches(tuple, R"(["a",1])"));
  EXPECT_FALSE(matches(tuple, R"(["a",1,2])"));
  EXPECT_FALSE(matches(tuple, R"([1])"));
  EXPECT_FALSE(matches(tuple, "[]"));
  auto tuple_rest = compile(R"({"prefixItems":[{"type":"string"}],"items":{"type":"null"}})");
  EXPECT_TRUE(matches(tuple_rest, R"(["a",null,null])"));
  EXPECT_FALSE(matches(tuple_rest, R"([null])"));
}

TEST(JsonSchema, StringLength) {
  auto g = compile(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_TRUE(matches(g, R"("ab")"));
  EXPECT_TRUE(matches(g, R"("日本語")"));  // characters, not bytes
  EXPECT_TRUE(matches(g, R"("a\nb")"));   // an escape is one character
  EXPECT_FALSE(matches(g, R"("a")"));
  EXPECT_FALSE(matches(g, R"("abcd")"));
}

TEST(JsonSchema, EnumConstAnyOf) {
  auto e = compile(R"({"enum":["red","green",3,null,{"a":[1]}]})");
  for (const char* ok : {R"("red")", R"("green")", "3", "null", R"({"a":[1]})"}) EXPECT_TRUE(matches(e, ok)) << ok;
  EXPECT_FALSE(matches(e, R"("blue")"));
  EXPECT_FALSE(matches(e, R"("re")"));
  auto c = compile(R"({"const":"only"})");
  EXPECT_TRUE(matches(c, R"("only")"));
  EXPECT_FALSE(matches(c, R"("other")"));
  auto any = compile(R"({"anyOf":[{"type":"integer"},{"type":"object","properties":{"x":{"type":"string"}},
                        "required":["x"]}]})");
  EXPECT_TRUE(matches(any, "5"));
  EXPECT_TRUE(matches(any, R"({"x":"y"})"));
  EXPECT_FALSE(matches(any, R"("s")"));
  auto one = compile(R"({"oneOf":[{"type":"boolean"},{"type":"null"}]})");
  EXPECT_TRUE(matches(one, "null"));
  auto all = compile(R"({"allOf":[{"type":"boolean"}]})");
  EXPECT_TRUE(matches(all, "true"));
  EXPECT_FALSE(matches(all, "1"));
}

TEST(JsonSchema, RefsAndRecursion) {
  auto g = compile(R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
                     "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},
                     "$ref":"#/$defs/node"})");
  EXPECT_TRUE(matches(g, R"({"v":1})"));
  EXPECT_TRUE(matches(g, R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]})"));
  EXPECT_FALSE(matches(g, R"({"v":1,"kids":[{"w":2}]})"));
  auto old = compile(R"({"definitions":{"a":{"type":"integer"}},"type":"array","items":{"$ref":"#/definitions/a"}})");
  EXPECT_TRUE(matches(old, "[1,2]"));
  auto self = compile(R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
                         "required":["next"]})");
  EXPECT_TRUE(matches(self, R"({"next":{"next":null}})"));
}

TEST(JsonSchema, Formats) {
  auto d = compile(R"({"type":"string","format":"date"})");
  EXPECT_TRUE(matches(d, R"("2024-02-29")"));
  EXPECT_FALSE(matches(d, R"("2024-13-01")"));
  EXPECT_FALSE(matches(d, R"("24-01-01")"));
  auto t = compile(R"({"type":"string","format":"time"})");
  EXPECT_TRUE(matches(t, R"("23:59:59Z")"));
  EXPECT_TRUE(matches(t, R"("08:00:00.250+02:00")"));
  EXPECT_FALSE(matches(t, R"("24:00:00Z")"));
  auto dt = compile(R"({"type":"string","format":"date-time"})");
  EXPECT_TRUE(matches(dt, R"("2024-01-31T12:30:00Z")"));
  EXPECT_FALSE(matches(dt, R"("2024-01-31 12:30:00Z")"));
  auto u = compile(R"({"type":"string","format":"uuid"})");
  EXPECT_TRUE(matches(u, R"("123e4567-e89b-12d3-a456-426614174000")"));
  EXPECT_FALSE(matches(u, R"("123e4567e89b12d3a456426614174000")"));
}

TEST(JsonSchema, WhitespaceIsBounded) {
  SchemaOptions o;
  auto g = compile(R"({"type":"array","items":{"type":"integer"}})");
  EXPECT_TRUE(matches(g, "[" + std::string(size_t(o.max_whitespace), ' ') + "1]"));
  EXPECT_FALSE(prefix_ok(g, "[" + std::string(size_t(o.max_whitespace) + 1, ' ')));
}

TEST(JsonSchema, CompletenessOfTheTopLevel) {
  auto g = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})");
  Matcher m(g);
  ASSERT_TRUE(m.accept(R"({"a":12)"));
  EXPECT_FALSE(m.is_complete());
  ASSERT_TRUE(m.accept("}"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_continue());  // nothing may follow the top-level value
  auto n = compile(R"({"type":"integer"})");
  Matcher k(n);
  ASSERT_TRUE(k.accept("12"));
  EXPECT_TRUE(k.is_complete());
  EXPECT_TRUE(k.can_continue());  // "123" too
}

TEST(JsonSchema, JsonObjectGrammar) {
  auto g = json_object_grammar();
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, R"({"a":{"b":[1,2,{"c":"d"}]},"e":null})"));
  EXPECT_TRUE(matches(g, "{}"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, "\"s\""));
}

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  for (const char* kw : {"pattern", "minimum", "maximum", "exclusiveMinimum", "multipleOf", "patternProperties",
                         "minProperties", "not", "if", "uniqueItems", "contains", "propertyNames"}) {
    const std::string schema = std::string(R"({"type":"string",")") + kw + R"(":1})";
    const std::string err = compile_error(schema);
    EXPECT_NE(err.find(std::string("'") + kw + "'"), std::string::npos) << kw << ": " << err;
  }
  EXPECT_NE(compile_error(R"({"$ref":"http://example.com/s.json"})").find("'$ref'"), std::string::npos);
  EXPECT_NE(compile_error(R"({"type":"string","format":"email"})").find("email"), std::string::npos);
  EXPECT_NE(compile_error(R"({"allOf":[{"type":"string"},{"maxLength":3}]})").find("allOf"), std::string::npos);
  EXPECT_NE(compile_error(R"({"properties":{"a":{"pattern":"x"}}})").find("#/properties/a"), std::string::npos);
  EXPECT_NE(compile_error(R"({"type":"strange"})").find("strange"), std::string::npos);
  EXPECT_NE(compile_error(R"({"$ref":"#/$defs/missing"})").find("does not exist"), std::string::npos);
  EXPECT_NE(compile_error(R"({"required":["x"],"properties":{}})").find("'x'"), std::string::npos);
  EXPECT_NE(compile_error(R"({"type":"array","minItems":3,"maxItems":2})").find("minItems"), std::string::npos);
  EXPECT_NE(compile_error("false").find("false"), std::string::npos);
  EXPECT_NE(compile_error("3").find("object or a boolean"), std::string::npos);
}

double seconds_to_compile(const std::string& schema, std::string& error) {
  const auto t0 = std::chrono::steady_clock::now();
  error = compile_error(schema);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(JsonSchema, HostileSchemasFailFast) {
  std::string err;
  // $ref cycles that consume nothing.
  EXPECT_LT(seconds_to_compile(R"({"$ref":"#"})", err), 1.0);
  EXPECT_NE(err.find("without consuming"), std::string::npos) << err;
  EXPECT_LT(seconds_to_compile(R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}},
                                  "$ref":"#/$defs/a"})", err), 1.0);
  EXPECT_NE(err.find("without consuming"), std::string::npos) << err;
  // A required self-reference: no finite document exists.
  seconds_to_compile(R"({"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]})", err);
  EXPECT_NE(err.find("no finite value"), std::string::npos) << err;
  // Deep nesting.
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += R"({"type":"array","items":)";
  deep += "true";
  for (int i = 0; i < 5000; ++i) deep += "}";
  EXPECT_LT(seconds_to_compile(deep, err), 1.0);
  EXPECT_NE(err.find("deeper"), std::string::npos) << err;
  // Huge counts.
  EXPECT_LT(seconds_to_compile(R"({"type":"string","maxLength":4000000000})", err), 1.0);
  EXPECT_NE(err.find("maxLength"), std::string::npos) << err;
  // A chain of definitions each used twice: linear, not exponential (each is compiled once).
  std::string defs = R"({"$defs":{)";
  for (int i = 0; i < 2000; ++i)
    defs += fmt::format(R"("d{}":{{"type":"array","items":{{"anyOf":[{{"$ref":"#/$defs/d{}"}},{{"$ref":"#/$defs/d{}"}}]}}}},)",
                        i, i + 1, i + 1);
  defs += R"("d2000":{"type":"null"}},"$ref":"#/$defs/d0"})";
  EXPECT_LT(seconds_to_compile(defs, err), 2.0);
  EXPECT_EQ(err, "");
  // Many large bounded repetitions: stopped by the grammar size limit.
  std::string big = R"({"type":"object","properties":{)";
  for (int i = 0; i < 400; ++i) big += fmt::format(R"("p{}":{{"type":"string","minLength":{},"maxLength":10000}},)", i, i);
  big += R"("last":{"type":"null"}}})";
  EXPECT_LT(seconds_to_compile(big, err), 5.0);
  EXPECT_NE(err.find("too large"), std::string::npos) << err;
}

// n identical alternatives nested `levels` deep.
std::string ambiguous(int n, int levels) {
  std::string alts = R"({"type":"integer"})";
  for (int level = 0; level < levels; ++level) {
    std::string next = R"({"anyOf":[)";
    for (int i = 0; i < n; ++i) next += std::string(i ? "," : "") + R"({"type":"array","items":)" + alts + "}";
    alts = next + "]}";
  }
  return alts;
}

TEST(JsonSchema, AmbiguousSchemasStayBounded) {
  const std::string doc = "[[[1,2],[3]],[]]";
  // 4 alternatives, three deep: 64 parse stacks at most, deduplicated.
  auto small = compile(ambiguous(4, 3));
  ASSERT_TRUE(small);
  EXPECT_TRUE(matches(small, doc));
  // 16 alternatives, three deep, would need 16^3 stacks: the matcher refuses the byte that
  // would pass its stack limit, quickly, instead of growing without bound.
  auto big = compile(ambiguous(16, 3));
  ASSERT_TRUE(big);
  const auto t0 = std::chrono::steady_clock::now();
  Matcher m(big);
  EXPECT_TRUE(m.accept("["));
  EXPECT_FALSE(m.accept(doc.substr(1)));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

}  // namespace
}  // namespace ember::grammar
