// Helpers for the grammar tests.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace ember::grammar::test {

inline std::shared_ptr<const Grammar> compile(const std::string& schema_text) {
  auto g = compile_json_schema(SchemaJson::parse(schema_text));
  EXPECT_TRUE(g.ok()) << schema_text.substr(0, 300) << ": " << g.status().message();
  return g.ok() ? *g : nullptr;
}

// The whole text is accepted and complete.
inline bool matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  return m.accept(text) && m.is_complete();
}

// The text is accepted byte by byte (a valid prefix).
inline bool prefix_ok(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  for (char c : text)
    if (!m.accept(std::string_view(&c, 1))) return false;
  return true;
}

inline std::string compile_error(const std::string& schema_text) {
  auto g = compile_json_schema(SchemaJson::parse(schema_text));
  return g.ok() ? std::string() : g.status().message();
}

}  // namespace ember::grammar::test
