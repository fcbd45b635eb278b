// Internals of SchemaCompiler (json_schema.cpp: keywords; json_rules.cpp: the fixed JSON
// rules — whitespace, strings, numbers, formats, any value).
#pragma once
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "grammar/json_schema.h"

namespace ember::grammar {

struct SchemaCompiler::Impl {
  Impl(Grammar& grammar, SchemaOptions options) : g(grammar), opt(options) {}

  Grammar& g;
  SchemaOptions opt;
  std::string error;  // the first error; compilation stops there
  ErrorKind error_kind = ErrorKind::invalid_argument;
  std::map<std::string, uint32_t> shared;  // fixed rules by name
  std::map<std::pair<const SchemaJson*, std::string>, uint32_t> refs;  // (document, pointer) -> rule
  struct Pending {
    uint32_t rule;
    const SchemaJson* schema;
    const SchemaJson* document;
    std::string path;
  };
  std::deque<Pending> pending;  // $ref targets still to compile
  int n_rule_names = 0;

  bool failed() const { return !error.empty(); }
  void fail(ErrorKind kind, const std::string& path, const std::string& message);
  bool over_limits(const std::string& path);
  uint32_t new_rule(const std::string& hint);
  std::vector<Element> lit(std::string_view bytes);
  Element cls(uint8_t lo, uint8_t hi);
  // A rule with the given alternatives.
  uint32_t rule(const std::string& hint, const std::vector<std::vector<Element>>& alts);

  // json_rules.cpp
  uint32_t ws();
  uint32_t string_char();
  uint32_t string(int min_len, int max_len);  // max_len < 0: unbounded
  uint32_t integer();
  uint32_t number();
  uint32_t format(const std::string& name, const std::string& path);
  uint32_t any_value();
  uint32_t any_object();
  uint32_t repeat_upto(const std::string& hint, Element item, int n);  // item{0,n}
  uint32_t digits_upto(int n);                                         // [0-9]{0,n}

  // json_schema.cpp
  uint32_t compile(const SchemaJson& s, const SchemaJson& doc, const std::string& path, int depth);
  uint32_t compile_typed(const SchemaJson& s, const SchemaJson& doc, const std::string& path, int depth);
  uint32_t compile_type(const std::string& type, const SchemaJson& s, const SchemaJson& doc, const std::string& path,
                        int depth);
  uint32_t compile_object(const SchemaJson& s, const SchemaJson& doc, const std::string& path, int depth);
  uint32_t compile_array(const SchemaJson& s, const SchemaJson& doc, const std::string& path, int depth);
  uint32_t compile_string(const SchemaJson& s, const std::string& path);
  uint32_t compile_ref(const std::string& ref, const SchemaJson& doc, const std::string& path);
  uint32_t compile_literals(const std::vector<SchemaJson>& values, const std::string& path);
  int count(const SchemaJson& s, const char* key, int fallback, const std::string& path);
  void drain_pending();
};

}  // namespace ember::grammar
