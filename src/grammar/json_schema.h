// JSON Schema -> Grammar (docs/grammar.md): the subset structured outputs need, everything
// else rejected with an error naming the keyword and where it is ("at #/properties/a").
// Hostile schemas (deep, huge, $ref cycles that consume nothing, empty value sets) are
// rejected within bounded time and memory.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "grammar/grammar.h"

namespace ember::grammar {

using SchemaJson = nlohmann::ordered_json;

struct SchemaOptions {
  int max_whitespace = 20;  // whitespace bytes allowed between two JSON tokens
  int max_depth = 64;       // nesting of schemas inside schemas
  int max_count = 10000;    // largest minItems/maxItems/minLength/maxLength
  GrammarLimits limits;
};

// Compiles one or more schemas into one grammar; the caller picks the root.
class SchemaCompiler {
 public:
  explicit SchemaCompiler(SchemaOptions options = {});
  ~SchemaCompiler();

  // A rule matching the JSON values `schema` allows (with bounded whitespace between tokens).
  // Local $refs ("#/$defs/x", "#/definitions/x", "#") resolve against `document`, which must
  // outlive this compiler. Errors are invalid_argument or unsupported.
  Expected<uint32_t> value(const SchemaJson& schema, const SchemaJson& document);
  uint32_t any_object();  // any JSON object
  uint32_t ws();          // the bounded whitespace
  uint32_t literal(std::string_view bytes);  // exactly these bytes
  Grammar& grammar() { return g_; }
  // Validates and hands the grammar out; the compiler is spent afterwards.
  Expected<std::shared_ptr<const Grammar>> finish(uint32_t root);

 private:
  struct Impl;
  Grammar g_;
  std::unique_ptr<Impl> impl_;
};

// The common cases: a whole document matching `schema` (leading whitespace allowed), and
// any JSON object (response_format json_object).
Expected<std::shared_ptr<const Grammar>> compile_json_schema(const SchemaJson& schema, const SchemaOptions& options = {});
std::shared_ptr<const Grammar> json_object_grammar(const SchemaOptions& options = {});

}  // namespace ember::grammar
