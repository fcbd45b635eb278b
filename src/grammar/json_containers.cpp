// Objects (properties in the order given, required ones mandatory) and arrays
// (prefixItems, items, minItems/maxItems).
#include <fmt/format.h>

#include "grammar/schema_impl.h"

namespace ember::grammar {

namespace {
std::string child(const std::string& path, std::string_view key) { return fmt::format("{}/{}", path, key); }
}  // namespace

// "{" ws first_0 "}" where, for property i, first_i is the rest of the members when none
// has been written yet and rest_i when one has (so needs a comma):
//   required: first_i ::= kv_i ws rest_i+1             rest_i ::= "," ws kv_i ws rest_i+1
//   optional: first_i ::= kv_i ws rest_i+1 | first_i+1 rest_i ::= "," ws kv_i ws rest_i+1 | rest_i+1
// After the last property come additional members when additionalProperties allows them.
uint32_t SchemaCompiler::Impl::compile_object(const SchemaJson& s, const SchemaJson& doc, const std::string& path,
                                              int depth) {
  static const SchemaJson kEmpty = SchemaJson::object();
  const SchemaJson* props = &kEmpty;
  if (auto it = s.find("properties"); it != s.end()) {
    if (!it->is_object()) return fail(ErrorKind::invalid_argument, child(path, "properties"), "'properties' must be an object"), 0;
    props = &*it;
  }
  std::set<std::string> required;
  if (auto it = s.find("required"); it != s.end()) {
    if (!it->is_array()) return fail(ErrorKind::invalid_argument, child(path, "required"), "'required' must be a list of names"), 0;
    for (const auto& name : *it) {
      if (!name.is_string()) return fail(ErrorKind::invalid_argument, child(path, "required"), "'required' must be a list of names"), 0;
      if (!props->contains(name.get<std::string>()))
        return fail(ErrorKind::unsupported, child(path, "required"),
                    fmt::format("required property '{}' is not in 'properties'", name.get<std::string>())), 0;
      required.insert(name.get<std::string>());
    }
  }
  // additionalProperties: default false when properties are given (OpenAI strict mode),
  // true (any value) for a bare object.
  const SchemaJson* extra = nullptr;
  SchemaJson any = true;
  auto ap = s.find("additionalProperties");
  if (ap == s.end()) {
    if (props->empty()) extra = &any;
  } else if (ap->is_boolean()) {
    if (ap->get<bool>()) extra = &any;
  } else {
    extra = &*ap;
  }
  const Element w = Grammar::ref(ws()), comma = lit(",")[0];
  uint32_t first = rule("obj-end", {{}}), rest = first;
  if (extra) {
    const uint32_t value = compile(*extra, doc, child(path, "additionalProperties"), depth + 1);
    if (failed()) return 0;
    const uint32_t member =
        rule("extra", {{Grammar::ref(string(0, -1)), w, lit(":")[0], w, Grammar::ref(value)}});
    rest = new_rule("extra-rest");
    g.add_alternative(rest, {});
    g.add_alternative(rest, {comma, w, Grammar::ref(member), w, Grammar::ref(rest)});
    first = rule("extra-first", {{}, {Grammar::ref(member), w, Grammar::ref(rest)}});
  }
  std::vector<std::pair<std::string, const SchemaJson*>> list;
  for (const auto& [name, sub] : props->items()) list.push_back({name, &sub});
  for (size_t i = list.size(); i-- > 0;) {
    const auto& [name, sub] = list[i];
    const uint32_t value = compile(*sub, doc, child(child(path, "properties"), name), depth + 1);
    if (failed() || over_limits(path)) return 0;
    std::vector<Element> kv = lit(SchemaJson(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    kv.insert(kv.end(), {w, lit(":")[0], w, Grammar::ref(value)});
    const uint32_t kv_rule = rule("kv", {kv});
    std::vector<std::vector<Element>> f = {{Grammar::ref(kv_rule), w, Grammar::ref(rest)}};
    std::vector<std::vector<Element>> r = {{comma, w, Grammar::ref(kv_rule), w, Grammar::ref(rest)}};
    if (!required.count(name)) {
      f.push_back({Grammar::ref(first)});
      r.push_back({Grammar::ref(rest)});
    }
    first = rule("first", f);
    rest = rule("rest", r);
  }
  std::vector<Element> seq = lit("{");
  seq.insert(seq.end(), {w, Grammar::ref(first), lit("}")[0]});
  return rule("object", {seq});
}

// "[" ws body "]": element i uses prefixItems[i], then items. tail_i follows i elements.
uint32_t SchemaCompiler::Impl::compile_array(const SchemaJson& s, const SchemaJson& doc, const std::string& path,
                                             int depth) {
  std::vector<uint32_t> prefix;
  if (auto it = s.find("prefixItems"); it != s.end()) {
    if (!it->is_array()) return fail(ErrorKind::invalid_argument, child(path, "prefixItems"), "'prefixItems' must be a list of schemas"), 0;
    for (size_t i = 0; i < it->size(); ++i) {
      prefix.push_back(compile((*it)[i], doc, child(child(path, "prefixItems"), std::to_string(i)), depth + 1));
      if (failed()) return 0;
    }
  }
  int min = count(s, "minItems", 0, path), max = count(s, "maxItems", -1, path);
  if (failed()) return 0;
  const int k = int(prefix.size());
  bool has_item = true;
  uint32_t item = 0;
  auto items = s.find("items");
  if (items != s.end() && items->is_boolean() && !items->get<bool>()) {
    has_item = false;
    max = max < 0 ? k : std::min(max, k);
  } else {
    item = items == s.end() ? any_value() : compile(*items, doc, child(path, "items"), depth + 1);
    if (failed()) return 0;
  }
  if (max >= 0 && min > max)
    return fail(ErrorKind::invalid_argument, path, "'minItems' is more than the array may hold ('maxItems', 'prefixItems')"), 0;
  auto el = [&](int i) { return Grammar::ref(i < k ? prefix[size_t(i)] : item); };
  const Element w = Grammar::ref(ws()), comma = lit(",")[0];
  // tail_i for i = top .. 1, built from the top down. Past max(k, min) and with no maxItems
  // the tail repeats itself.
  const int top = max >= 0 ? max : std::max(k, min);
  uint32_t tail;
  if (max >= 0) {
    tail = rule("tail-end", {{}});
  } else {
    tail = new_rule("tail-star");
    g.add_alternative(tail, {});
    if (has_item) g.add_alternative(tail, {comma, w, Grammar::ref(item), w, Grammar::ref(tail)});
  }
  for (int i = top - 1; i >= 1; --i) {
    std::vector<std::vector<Element>> alts = {{comma, w, el(i), w, Grammar::ref(tail)}};
    if (i >= min) alts.push_back({});
    tail = rule("tail", alts);
    if (over_limits(path)) return 0;
  }
  std::vector<std::vector<Element>> body;
  if (top >= 1 || max < 0) {
    if (k > 0 || has_item) body.push_back({el(0), w, Grammar::ref(tail)});
  }
  if (min == 0) body.push_back({});
  std::vector<Element> seq = lit("[");
  seq.insert(seq.end(), {w, Grammar::ref(rule("array-body", body)), lit("]")[0]});
  return rule("array", {seq});
}

}  // namespace ember::grammar
