// Property test: random schemas, random values that satisfy them, serialised with random
// (bounded) whitespace: the matcher must accept each whole text and say it is complete.
// The same value with one node replaced by a value of the wrong kind, or with a required
// property dropped, must be rejected.
#include <gtest/gtest.h>

#include <random>

#include "unit/grammar/test_util.h"

namespace ember::grammar {
namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }

  SchemaJson schema(int depth) {
    const int kind = uniform(0, depth > 2 ? 5 : 7);
    switch (kind) {
      case 0: return {{"type", "integer"}};
      case 1: return {{"type", "number"}};
      case 2: {
        SchemaJson s = {{"type", "string"}};
        if (coin()) s["minLength"] = uniform(0, 3);
        if (coin()) s["maxLength"] = s.value("minLength", 0) + uniform(0, 5);
        return s;
      }
      case 3: return {{"type", coin() ? "boolean" : "null"}};
      case 4: return {{"enum", SchemaJson::array({"red", "green", "blue \u00e9"})}};
      case 5: return {{"type", "string"}, {"format", coin() ? "date" : "uuid"}};
      case 6: {
        SchemaJson s = {{"type", "object"}, {"properties", SchemaJson::object()}, {"required", SchemaJson::array()}};
        const int n = uniform(0, 4);
        for (int i = 0; i < n; ++i) {
          const std::string name = "p" + std::to_string(i) + (coin(0.2) ? "\"q\u00fc" : "");
          s["properties"][name] = schema(depth + 1);
          if (coin()) s["required"].push_back(name);
        }
        return s;
      }
      default: {
        SchemaJson s = {{"type", "array"}, {"items", schema(depth + 1)}};
        if (coin()) s["minItems"] = uniform(0, 2);
        if (coin()) s["maxItems"] = s.value("minItems", 0) + uniform(0, 3);
        return s;
      }
    }
  }

  std::string ws() {
    static const char kWs[] = {' ', '\n', '\t'};
    std::string out;
    const int n = coin(0.7) ? 0 : uniform(0, SchemaOptions{}.max_whitespace);
    for (int i = 0; i < n; ++i) out += kWs[uniform(0, 2)];
    return out;
  }

  std::string string_chars(int n) {
    static const std::vector<std::string> kChars = {"a", "Z", " ", "\\\"", "\\\\", "\\n", "\\u00e9", "\xc3\xa9",
                                                    "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "/", "\\/"};
    std::string out;
    for (int i = 0; i < n; ++i) out += kChars[size_t(uniform(0, int(kChars.size()) - 1))];
    return out;
  }

  // A value of `s`, or a wrong one at node number `bad` (counting nodes as they are made).
  std::string value(const SchemaJson& s, int bad, int& node) {
    const bool wrong = node++ == bad;
    const std::string type = s.value("type", "");
    if (s.contains("enum")) return wrong ? "\"purple\"" : s["enum"][size_t(uniform(0, 2))].dump();
    if (type == "integer") return wrong ? "\"7\"" : std::to_string(uniform(-100000, 100000));
    if (type == "number")
      return wrong ? "true" : std::to_string(uniform(-99, 99)) + (coin() ? "." + std::to_string(uniform(0, 999)) : "") +
                                  (coin(0.2) ? "e-" + std::to_string(uniform(0, 30)) : "");
    if (type == "boolean") return wrong ? "null" : (coin() ? "true" : "false");
    if (type == "null") return wrong ? "0" : "null";
    if (type == "string" && s.contains("format"))
      return wrong ? "\"not a date\""
                   : s["format"] == "date" ? "\"2023-0" + std::to_string(uniform(1, 9)) + "-1" + std::to_string(uniform(0, 9)) + "\""
                                           : "\"0123abcd-4567-89ef-ABCD-0123456789ab\"";
    if (type == "string") {
      const int lo = s.value("minLength", 0), hi = s.value("maxLength", lo + 6);
      if (wrong) return s.contains("maxLength") && coin() ? "\"" + string_chars(hi + 1) + "\"" : "12";
      return "\"" + string_chars(uniform(lo, hi)) + "\"";
    }
    if (type == "array") {
      if (wrong) return "{}";
      const int lo = s.value("minItems", 0), hi = s.value("maxItems", lo + 3);
      const int n = uniform(lo, hi);
      std::string out = "[" + ws();
      for (int i = 0; i < n; ++i) out += (i ? "," + ws() : "") + value(s["items"], bad, node) + ws();
      return out + "]";
    }
    // object: properties in order, optional ones sometimes; a "wrong" object drops a
    // required property when it has one, else is an array.
    const auto& req = s["required"];
    if (wrong && req.empty()) return "[]";
    const std::string drop = wrong ? req[size_t(uniform(0, int(req.size()) - 1))].get<std::string>() : "";
    std::string out = "{" + ws();
    bool first = true;
    for (const auto& [name, sub] : s["properties"].items()) {
      const bool required = std::find(req.begin(), req.end(), name) != req.end();
      if (name == drop || (!required && coin())) continue;
      out += (first ? "" : "," + ws()) + SchemaJson(name).dump() + ws() + ":" + ws() + value(sub, bad, node) + ws();
      first = false;
    }
    return out + "}";
  }

 private:
  std::mt19937_64 rng_;
};

TEST(JsonSchemaProperty, RandomSchemasAcceptValidAndRejectMutatedValues) {
  int n_valid = 0, n_mutated = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Gen gen(seed * 7919);
    const SchemaJson schema = gen.schema(0);
    auto g = compile_json_schema(schema);
    ASSERT_TRUE(g.ok()) << schema.dump() << ": " << g.status().message();
    int n_nodes = 0;
    for (int i = 0; i < 4; ++i) {
      int node = 0;
      const std::string text = gen.ws() + gen.value(schema, -1, node);
      n_nodes = std::max(n_nodes, node);
      Matcher m(*g);
      ASSERT_TRUE(m.accept(text)) << "schema " << schema.dump() << "\nrejected " << text;
      ASSERT_TRUE(m.is_complete()) << "schema " << schema.dump() << "\nincomplete " << text;
      ++n_valid;
    }
    for (int i = 0; i < 4; ++i) {
      int node = 0;
      const int bad = gen.uniform(0, std::max(0, n_nodes - 1));
      const std::string text = gen.value(schema, bad, node);
      if (node <= bad) continue;  // this draw made fewer nodes than `bad`: nothing was mutated
      Matcher m(*g);
      EXPECT_FALSE(m.accept(text) && m.is_complete()) << "schema " << schema.dump() << "\naccepted " << text;
      ++n_mutated;
    }
  }
  EXPECT_EQ(n_valid, 1200);
  EXPECT_GT(n_mutated, 600);
}

}  // namespace
}  // namespace ember::grammar
