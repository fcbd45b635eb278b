// Python methods templates call on strings, dicts and lists (the non-mutating ones).
#include <algorithm>

#include "chat/pystr.h"
#include "chat/render.h"

namespace ember::chat {

const Value* ArgReader::get(std::size_t index, std::string_view name) const {
  if (index < args.positional.size()) return &args.positional[index];
  return name.empty() ? nullptr : args.keyword_arg(name);
}

std::string ArgReader::string_arg(std::size_t index, std::string_view name, std::string fallback) const {
  const Value* v = get(index, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_string()) r.fail(std::string(function) + "() argument must be str, not " + type_name(*v));
  return v->str();
}

std::int64_t ArgReader::int_arg(std::size_t index, std::string_view name, std::int64_t fallback) const {
  const Value* v = get(index, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) {
    r.fail("'" + type_name(*v) + "' object cannot be interpreted as an integer");
  }
  return v->as_int();
}

bool ArgReader::bool_arg(std::size_t index, std::string_view name, bool fallback) const {
  const Value* v = get(index, name);
  return v ? truthy(*v) : fallback;
}

namespace {

using Method = Value (*)(Renderer&, const Value&, CallArgs&);

std::optional<std::string> optional_chars(ArgReader& a) {
  const Value* v = a.get(0, "chars");
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) a.r.fail("strip arg must be None or str");
  return v->str();
}

Value strip_method(Renderer& r, const Value& self, CallArgs& args, pystr::Side side) {
  ArgReader a{r, args, "strip"};
  return Value(pystr::strip(self.str(), optional_chars(a), side));
}

Value split_method(Renderer& r, const Value& self, CallArgs& args, bool from_right) {
  ArgReader a{r, args, "split"};
  const Value* sep = a.get(0, "sep");
  std::optional<std::string> separator;
  if (sep && !sep->is_none()) {
    if (!sep->is_string()) r.fail("must be str or None, not " + type_name(*sep));
    if (sep->str().empty()) r.fail("empty separator");
    separator = sep->str();
  }
  std::int64_t maxsplit = a.int_arg(1, "maxsplit", -1);
  std::vector<std::string> parts = pystr::split(self.str(), separator, maxsplit, from_right);
  r.check_items(parts.size());
  std::vector<Value> items(parts.begin(), parts.end());
  return Value::list(std::move(items));
}

bool affix_matches(Renderer& r, const Value& self, CallArgs& args, bool suffix) {
  if (args.positional.empty()) r.fail("startswith/endswith takes at least 1 argument");
  const Value& arg = args.positional[0];
  std::vector<Value> candidates = arg.is_array() ? arg.array().items : std::vector<Value>{arg};
  const std::string& s = self.str();
  for (const Value& c : candidates) {
    if (!c.is_string()) r.fail("startswith/endswith first arg must be str or a tuple of str, not " + type_name(c));
    const std::string& t = c.str();
    if (t.size() > s.size()) continue;
    if (suffix ? s.compare(s.size() - t.size(), t.size(), t) == 0 : s.compare(0, t.size(), t) == 0) return true;
  }
  return false;
}

Value string_method(Renderer& r, const Value& self, const std::string& name, CallArgs& args) {
  ArgReader a{r, args, name};
  const std::string& s = self.str();
  if (name == "strip") return strip_method(r, self, args, pystr::Side::both);
  if (name == "lstrip") return strip_method(r, self, args, pystr::Side::left);
  if (name == "rstrip") return strip_method(r, self, args, pystr::Side::right);
  if (name == "split") return split_method(r, self, args, false);
  if (name == "rsplit") return split_method(r, self, args, true);
  if (name == "startswith") return Value(affix_matches(r, self, args, false));
  if (name == "endswith") return Value(affix_matches(r, self, args, true));
  if (name == "upper") return Value(pystr::upper(s));
  if (name == "lower") return Value(pystr::lower(s));
  if (name == "title") return Value(pystr::title(s));
  if (name == "capitalize") return Value(pystr::capitalize(s));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    std::int64_t at = pystr::find(s, a.string_arg(0, "sub", ""), name[0] == 'r');
    if (at < 0 && name.find("index") != std::string::npos) r.fail("substring not found");
    return Value(at);
  }
  if (name == "count") return Value(pystr::count(s, a.string_arg(0, "sub", "")));
  if (name == "replace") {
    std::string old = a.string_arg(0, "old", ""), with = a.string_arg(1, "new", "");
    std::int64_t count = a.int_arg(2, "count", -1);
    std::int64_t hits = old.empty() ? static_cast<std::int64_t>(pystr::length(s)) + 1 : pystr::count(s, old);
    if (count >= 0) hits = std::min(hits, count);
    if (with.size() > old.size()) r.check_string_size(s.size() + static_cast<std::size_t>(hits) * (with.size() - old.size()));
    return Value(pystr::replace(s, old, with, count));
  }
  if (name == "splitlines") {
    std::vector<std::string> lines = pystr::splitlines(s, a.bool_arg(0, "keepends", false));
    return Value::list(std::vector<Value>(lines.begin(), lines.end()));
  }
  if (name == "join") {
    std::string out;
    const Value* items = a.get(0, "iterable");
    if (!items) r.fail("join() takes exactly one argument");
    bool first = true;
    for (const Value& v : r.iterate(*items)) {
      if (!v.is_string()) r.fail("sequence item: expected str instance, " + type_name(v) + " found");
      if (!first) out += s;
      out += v.str();
      first = false;
      r.check_string_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    std::string affix = a.string_arg(0, "prefix", "");
    bool prefix = name == "removeprefix";
    if (affix.size() <= s.size() &&
        (prefix ? s.compare(0, affix.size(), affix) == 0 : s.compare(s.size() - affix.size(), affix.size(), affix) == 0)) {
      return Value(prefix ? s.substr(affix.size()) : s.substr(0, s.size() - affix.size()));
    }
    return self;
  }
  auto all_of = [&](auto pred) { return !s.empty() && std::all_of(s.begin(), s.end(), pred); };
  if (name == "isdigit") return Value(all_of([](char c) { return c >= '0' && c <= '9'; }));
  if (name == "isalpha") return Value(all_of([](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }));
  if (name == "isalnum") return Value(all_of([](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }));
  if (name == "isspace") return Value(all_of([](char c) { return pystr::is_space(static_cast<unsigned char>(c)); }));
  if (name == "islower") return Value(pystr::lower(s) == s && pystr::upper(s) != s);
  if (name == "isupper") return Value(pystr::upper(s) == s && pystr::lower(s) != s);
  r.fail("str." + name + "() is not supported");
}

Value dict_method(Renderer& r, const Value& self, const std::string& name, CallArgs& args) {
  const Object& o = self.object();
  if (name == "items") {
    std::vector<Value> items;
    items.reserve(o.entries.size());
    for (const auto& [k, v] : o.entries) items.push_back(Value::list({Value(k), v}, true));
    return Value::list(std::move(items));
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> items;
    items.reserve(o.entries.size());
    for (const auto& [k, v] : o.entries) items.push_back(name == "keys" ? Value(k) : v);
    return Value::list(std::move(items));
  }
  if (name == "get") {
    if (args.positional.empty()) r.fail("get expected at least 1 argument, got 0");
    const Value& key = args.positional[0];
    if (key.is_string()) {
      if (const Value* v = o.find(key.str())) return *v;
    }
    return args.positional.size() > 1 ? args.positional[1] : Value();
  }
  r.fail("dict." + name + "() is not supported");
}

Value list_method(Renderer& r, const Value& self, const std::string& name, CallArgs& args) {
  if (args.positional.empty()) r.fail("list." + name + "() takes exactly one argument");
  const auto& items = self.array().items;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!equal(items[i], args.positional[0])) continue;
    if (name == "index") return Value(static_cast<std::int64_t>(i));
    ++count;
  }
  if (name == "index") r.fail(to_repr(args.positional[0]) + " is not in list");
  return Value(count);
}

bool is_method(const Value& object, const std::string& name) {
  static const char* kString[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                  "upper", "lower", "title", "capitalize", "find", "rfind", "index", "rindex",
                                  "count", "replace", "splitlines", "join", "removeprefix", "removesuffix",
                                  "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  static const char* kDict[] = {"items", "keys", "values", "get"};
  static const char* kList[] = {"index", "count"};
  auto in = [&](const auto& names) {
    return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
  };
  if (object.is_string()) return in(kString);
  if (object.is_object()) return in(kDict);
  if (object.is_array()) return in(kList);
  return false;
}

}  // namespace

Value find_method(const Value& object, const std::string& name) {
  if (!is_method(object, name)) return Value::undefined();
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->call = [object, name](Renderer& r, CallArgs& args) -> Value {
    if (object.is_string()) return string_method(r, object, name, args);
    if (object.is_object()) return dict_method(r, object, name, args);
    return list_method(r, object, name, args);
  };
  return Value(CallablePtr(std::move(c)));
}

}  // namespace ember::chat
