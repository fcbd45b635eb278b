// JSON Schema keywords -> grammar rules (docs/grammar.md lists what is supported).
#include "grammar/json_schema.h"

#include <fmt/format.h>

#include <algorithm>

#include "grammar/schema_impl.h"

namespace ember::grammar {

namespace {

// Keywords that only describe (ignored) and those compiled; anything else is rejected.
const std::set<std::string>& known_keywords() {
  static const std::set<std::string> k = {
      "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
      "writeOnly", "$defs", "definitions", "type", "properties", "required", "additionalProperties", "items",
      "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "enum", "const", "anyOf", "oneOf", "allOf",
      "$ref", "format"};
  return k;
}

std::string child(const std::string& path, std::string_view key) { return fmt::format("{}/{}", path, key); }

}  // namespace

int SchemaCompiler::Impl::count(const SchemaJson& s, const char* key, int fallback, const std::string& path) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  if (!it->is_number_integer() || (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0)) {
    fail(ErrorKind::invalid_argument, path, fmt::format("'{}' must be a non-negative integer", key));
    return fallback;
  }
  const uint64_t v = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
  if (v > uint64_t(opt.max_count)) {
    fail(ErrorKind::unsupported, path, fmt::format("'{}': {} is too large (at most {})", key, v, opt.max_count));
    return fallback;
  }
  return int(v);
}

uint32_t SchemaCompiler::Impl::compile(const SchemaJson& s, const SchemaJson& doc, const std::string& path, int depth) {
  if (failed() || over_limits(path)) return 0;
  if (depth > opt.max_depth) {
    fail(ErrorKind::invalid_argument, path, fmt::format("the schema nests deeper than {} levels", opt.max_depth));
    return 0;
  }
  if (s.is_boolean()) {
    if (s.get<bool>()) return any_value();
    fail(ErrorKind::invalid_argument, path, "the schema 'false' allows no value");
    return 0;
  }
  if (!s.is_object()) {
    fail(ErrorKind::invalid_argument, path, "a schema must be an object or a boolean");
    return 0;
  }
  for (const auto& [key, value] : s.items())
    if (!known_keywords().count(key)) {
      fail(ErrorKind::unsupported, path, fmt::format("'{}' is not supported", key));
      return 0;
    }
  // Combinators and references stand alone (annotations aside).
  static const char* const kCombinators[] = {"$ref", "anyOf", "oneOf", "allOf", "enum", "const"};
  const char* which = nullptr;
  for (const char* c : kCombinators)
    if (s.contains(c)) {
      if (which) {
        fail(ErrorKind::unsupported, path, fmt::format("'{}' together with '{}' is not supported", which, c));
        return 0;
      }
      which = c;
    }
  if (which) {
    static const std::set<std::string> annotations = {"title", "description", "default", "examples", "$schema",
                                                      "$id", "$comment", "deprecated", "readOnly", "writeOnly",
                                                      "$defs", "definitions", "type"};
    for (const auto& [key, value] : s.items())
      if (key != which && !annotations.count(key)) {
        fail(ErrorKind::unsupported, path, fmt::format("'{}' together with '{}' is not supported", which, key));
        return 0;
      }
  }
  const std::string w = which ? which : "";
  if (w == "$ref") {
    if (!s["$ref"].is_string()) return fail(ErrorKind::invalid_argument, path, "'$ref' must be a string"), 0;
    return compile_ref(s["$ref"].get<std::string>(), doc, child(path, "$ref"));
  }
  if (w == "enum" || w == "const") {
    if (w == "const") return compile_literals({s["const"]}, child(path, "const"));
    const SchemaJson& e = s["enum"];
    if (!e.is_array() || e.empty())
      return fail(ErrorKind::invalid_argument, child(path, "enum"), "'enum' must be a non-empty list"), 0;
    return compile_literals(std::vector<SchemaJson>(e.begin(), e.end()), child(path, "enum"));
  }
  if (w == "anyOf" || w == "oneOf" || w == "allOf") {
    const SchemaJson& list = s[w];
    if (!list.is_array() || list.empty())
      return fail(ErrorKind::invalid_argument, child(path, w), fmt::format("'{}' must be a non-empty list", w)), 0;
    if (w == "allOf" && list.size() != 1)
      return fail(ErrorKind::unsupported, child(path, w), "'allOf' with more than one schema is not supported"), 0;
    std::vector<std::vector<Element>> alts;
    for (size_t i = 0; i < list.size(); ++i) {
      const uint32_t r = compile(list[i], doc, child(child(path, w), std::to_string(i)), depth + 1);
      if (failed()) return 0;
      alts.push_back({Grammar::ref(r)});
    }
    return rule(w, alts);
  }
  return compile_typed(s, doc, path, depth);
}

// The type's rules; without 'type', the one the keywords imply, else any value.
uint32_t SchemaCompiler::Impl::compile_typed(const SchemaJson& s, const SchemaJson& doc, const std::string& path,
                                             int depth) {
  std::vector<std::string> types;
  if (auto it = s.find("type"); it != s.end()) {
    if (it->is_string()) types.push_back(it->get<std::string>());
    else if (it->is_array() && !it->empty())
      for (const auto& t : *it) {
        if (!t.is_string()) return fail(ErrorKind::invalid_argument, child(path, "type"), "'type' must be a string or a list of strings"), 0;
        types.push_back(t.get<std::string>());
      }
    else return fail(ErrorKind::invalid_argument, child(path, "type"), "'type' must be a string or a list of strings"), 0;
  } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
    types.push_back("object");
  } else if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") || s.contains("maxItems")) {
    types.push_back("array");
  } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) {
    types.push_back("string");
  } else {
    return any_value();
  }
  std::vector<std::vector<Element>> alts;
  for (const std::string& t : types) {
    const uint32_t r = compile_type(t, s, doc, path, depth);
    if (failed()) return 0;
    alts.push_back({Grammar::ref(r)});
  }
  return alts.size() == 1 ? alts[0][0].value : rule("types", alts);
}

uint32_t SchemaCompiler::Impl::compile_type(const std::string& type, const SchemaJson& s, const SchemaJson& doc,
                                            const std::string& path, int depth) {
  if (type == "object") return compile_object(s, doc, path, depth);
  if (type == "array") return compile_array(s, doc, path, depth);
  if (type == "string") return compile_string(s, path);
  if (type == "integer") return integer();
  if (type == "number") return number();
  if (type == "boolean") return rule("boolean", {lit("true"), lit("false")});
  if (type == "null") return rule("null", {lit("null")});
  fail(ErrorKind::invalid_argument, child(path, "type"), fmt::format("unknown type \"{}\"", type));
  return 0;
}

uint32_t SchemaCompiler::Impl::compile_string(const SchemaJson& s, const std::string& path) {
  const int min_len = count(s, "minLength", 0, path), max_len = count(s, "maxLength", -1, path);
  if (failed()) return 0;
  if (max_len >= 0 && min_len > max_len)
    return fail(ErrorKind::invalid_argument, path, "'minLength' is greater than 'maxLength'"), 0;
  if (auto it = s.find("format"); it != s.end()) {
    if (!it->is_string()) return fail(ErrorKind::invalid_argument, path, "'format' must be a string"), 0;
    if (s.contains("minLength") || s.contains("maxLength"))
      return fail(ErrorKind::unsupported, path, "'format' together with 'minLength'/'maxLength' is not supported"), 0;
    return format(it->get<std::string>(), child(path, "format"));
  }
  return string(min_len, max_len);
}

// Alternatives of exact JSON texts (compact, as nlohmann prints them).
uint32_t SchemaCompiler::Impl::compile_literals(const std::vector<SchemaJson>& values, const std::string& path) {
  std::vector<std::vector<Element>> alts;
  size_t bytes = 0;
  for (const auto& v : values) {
    const std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    bytes += text.size();
    if (bytes > opt.limits.max_elements) {
      fail(ErrorKind::invalid_argument, path, "the schema is too large: its enum/const values are too long");
      return 0;
    }
    alts.push_back(lit(text));
  }
  return rule("literal", alts);
}

uint32_t SchemaCompiler::Impl::compile_ref(const std::string& ref, const SchemaJson& doc, const std::string& path) {
  if (ref.empty() || ref[0] != '#')
    return fail(ErrorKind::unsupported, path, fmt::format("'$ref': \"{}\" is not supported (only local references "
                                                          "such as \"#/$defs/name\")", ref)), 0;
  const auto key = std::make_pair(&doc, ref);
  if (auto it = refs.find(key); it != refs.end()) return it->second;
  const SchemaJson* target = nullptr;
  try {
    const SchemaJson::json_pointer ptr(ref.substr(1));
    if (doc.contains(ptr)) target = &doc.at(ptr);
  } catch (const std::exception&) {
    return fail(ErrorKind::invalid_argument, path, fmt::format("'$ref': \"{}\" is not a valid JSON pointer", ref)), 0;
  }
  if (!target) return fail(ErrorKind::invalid_argument, path, fmt::format("'$ref': \"{}\" does not exist", ref)), 0;
  const uint32_t r = new_rule("ref");
  refs[key] = r;
  pending.push_back({r, target, &doc, ref});
  return r;
}

// $ref targets are compiled one after another (not nested), so a long chain of
// definitions cannot exhaust the stack.
void SchemaCompiler::Impl::drain_pending() {
  while (!pending.empty() && !failed()) {
    const Pending p = pending.front();
    pending.pop_front();
    const uint32_t body = compile(*p.schema, *p.document, p.path, 0);
    if (!failed()) g.add_alternative(p.rule, {Grammar::ref(body)});
  }
}

SchemaCompiler::SchemaCompiler(SchemaOptions options) : impl_(std::make_unique<Impl>(g_, options)) {}
SchemaCompiler::~SchemaCompiler() = default;

Expected<uint32_t> SchemaCompiler::value(const SchemaJson& schema, const SchemaJson& document) {
  const uint32_t r = impl_->compile(schema, document, "#", 0);
  impl_->drain_pending();
  if (impl_->failed()) return Status(impl_->error_kind, impl_->error);
  return r;
}

uint32_t SchemaCompiler::any_object() { return impl_->any_object(); }
uint32_t SchemaCompiler::ws() { return impl_->ws(); }
uint32_t SchemaCompiler::literal(std::string_view bytes) { return impl_->rule("literal", {impl_->lit(bytes)}); }

Expected<std::shared_ptr<const Grammar>> SchemaCompiler::finish(uint32_t root) {
  if (impl_->over_limits("")) return Status(impl_->error_kind, impl_->error);
  g_.set_root(root);
  EMBER_RETURN_IF_ERROR(g_.validate());
  return std::make_shared<const Grammar>(std::move(g_));
}

Expected<std::shared_ptr<const Grammar>> compile_json_schema(const SchemaJson& schema, const SchemaOptions& options) {
  SchemaCompiler c(options);
  auto value = c.value(schema, schema);
  if (!value) return value.status();
  const uint32_t root = c.grammar().add_rule("root");
  c.grammar().add_alternative(root, {Grammar::ref(c.ws()), Grammar::ref(*value)});
  return c.finish(root);
}

std::shared_ptr<const Grammar> json_object_grammar(const SchemaOptions& options) {
  SchemaCompiler c(options);
  const uint32_t root = c.grammar().add_rule("root");
  c.grammar().add_alternative(root, {Grammar::ref(c.ws()), Grammar::ref(c.any_object())});
  auto g = c.finish(root);
  return g ? *g : nullptr;
}

}  // namespace ember::grammar
