// Attribute and item access (jinja2's sandboxed getattr/getitem), the loop object and the
// globals: range, namespace, dict, raise_exception, strftime_now.
#include <fmt/format.h>

#include <ctime>

#include "chat/error.h"
#include "chat/pystr.h"
#include "chat/render.h"

namespace ember::chat {
namespace {

bool is_mutating_method(const std::string& name) {
  static const char* kNames[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                 "update", "setdefault", "popitem", "__setitem__"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

std::string object_label(const Value& v) {
  if (v.is_none()) return "'None'";
  return fmt::format("'{} object'", type_name(v));
}

}  // namespace

Value Renderer::get_attr(const Value& object, const std::string& name) const {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_object()) {
    if (const Value* v = object.object().find(name)) {
      Value method = find_method(object, name);
      return method.is_undefined() ? *v : method;
    }
  }
  if (!name.empty() && name[0] == '_') {
    fail("access to attribute '" + name + "' of '" + type_name(object) + "' object is unsafe");
  }
  if (object.kind() == Kind::ns) {
    if (const Value* v = object.ns().attrs.find(name)) return *v;
    return Value::undefined("'Namespace' object has no attribute '" + name + "'");
  }
  Value method = find_method(object, name);
  if (!method.is_undefined()) return method;
  if ((object.is_array() || object.is_object()) && is_mutating_method(name)) {
    return Value::undefined("access to attribute '" + name + "' of '" + type_name(object) + "' object is unsafe.");
  }
  return Value::undefined(object_label(object) + " has no attribute '" + name + "'");
}

Value Renderer::get_item(const Value& object, const Value& key) const {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_object()) {
    if (key.is_string()) {
      if (const Value* v = object.object().find(key.str())) return *v;
      if (!key.str().empty() && key.str()[0] != '_') return get_attr(object, key.str());
    }
    return Value::undefined(object_label(object) + " has no element " + to_repr(key));
  }
  if ((object.is_array() || object.is_string()) && (key.is_int() || key.is_bool())) {
    std::int64_t i = key.as_int();
    if (object.is_array()) {
      const auto& items = object.array().items;
      auto n = static_cast<std::int64_t>(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[static_cast<std::size_t>(i)];
    } else {
      std::u32string cps = pystr::decode(object.str());
      auto n = static_cast<std::int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(pystr::encode(cps.substr(static_cast<std::size_t>(i), 1)));
    }
    return Value::undefined(object_label(object) + " has no element " + std::to_string(key.as_int()));
  }
  if (key.is_string() && (object.is_array() || object.is_string() || object.kind() == Kind::ns)) {
    return get_attr(object, key.str());
  }
  return Value::undefined(object_label(object) + " has no element " + to_repr(key));
}

Value loop_object(const LoopState& state) {
  const auto& items = *state.items;
  auto n = static_cast<std::int64_t>(items.size());
  auto i = static_cast<std::int64_t>(state.index);
  Object o;
  o.entries.reserve(12);
  o.entries.emplace_back("index", Value(i + 1));
  o.entries.emplace_back("index0", Value(i));
  o.entries.emplace_back("revindex", Value(n - i));
  o.entries.emplace_back("revindex0", Value(n - i - 1));
  o.entries.emplace_back("first", Value(i == 0));
  o.entries.emplace_back("last", Value(i == n - 1));
  o.entries.emplace_back("length", Value(n));
  o.entries.emplace_back("depth", Value(1));
  o.entries.emplace_back("depth0", Value(0));
  if (i > 0) o.entries.emplace_back("previtem", items[static_cast<std::size_t>(i - 1)]);
  if (i + 1 < n) o.entries.emplace_back("nextitem", items[static_cast<std::size_t>(i + 1)]);
  auto cycle = std::make_shared<Callable>();
  cycle->name = "cycle";
  cycle->call = [i](Renderer& r, CallArgs& args) -> Value {
    if (args.positional.empty()) r.fail("no items for cycling given");
    return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
  };
  o.entries.emplace_back("cycle", Value(CallablePtr(std::move(cycle))));
  return Value::dict(std::move(o));
}

namespace {

Value global_range(Renderer& r, CallArgs& args) {
  std::int64_t start = 0, stop = 0, step = 1;
  std::vector<std::int64_t> nums;
  for (const auto& a : args.positional) {
    if (!a.is_int() && !a.is_bool()) r.fail("'" + type_name(a) + "' object cannot be interpreted as an integer");
    nums.push_back(a.as_int());
  }
  if (nums.empty() || nums.size() > 3 || !args.keyword.empty()) r.fail("range expected 1 to 3 integer arguments");
  if (nums.size() == 1) {
    stop = nums[0];
  } else {
    start = nums[0];
    stop = nums[1];
    if (nums.size() == 3) step = nums[2];
  }
  if (step == 0) r.fail("range() arg 3 must not be zero");
  // Overflow-safe count, computed in 128 bits.
  __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  __int128 abs_step = step > 0 ? step : -static_cast<__int128>(step);
  __int128 count = span <= 0 ? 0 : (span - 1) / abs_step + 1;
  constexpr std::int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE
  if (count > kMaxRange) {
    r.fail_limit("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> items;
  items.reserve(static_cast<std::size_t>(count));
  for (std::int64_t k = 0, v = start; k < static_cast<std::int64_t>(count); ++k, v += step) items.emplace_back(v);
  return Value::list(std::move(items));
}

Object object_from_args(Renderer& r, CallArgs& args, const char* function) {
  Object o;
  if (args.positional.size() > 1) r.fail(std::string(function) + "() takes at most 1 positional argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_object()) {
      o = src.object();
    } else if (src.kind() == Kind::ns) {
      o = src.ns().attrs;
    } else {
      r.fail(std::string(function) + "() argument must be a mapping, not " + type_name(src));
    }
  }
  for (auto& [k, v] : args.keyword) o.set(k, v);
  return o;
}

Value global_namespace(Renderer& r, CallArgs& args) {
  auto ns = std::make_shared<Namespace>();
  ns->attrs = object_from_args(r, args, "namespace");
  for (const auto& [k, v] : ns->attrs.entries) {
    if (!k.empty() && k[0] == '_') r.fail("cannot store underscore-prefixed attribute '" + k + "' on a namespace");
    if (v.holds_handle()) r.fail("a namespace attribute cannot hold a namespace or a function");
  }
  return Value(NamespacePtr(std::move(ns)));
}

Value global_strftime_now(Renderer& r, CallArgs& args) {
  if (args.positional.size() != 1 || !args.positional[0].is_string()) r.fail("strftime_now() expects a format string");
  const std::string& format = args.positional[0].str();
  if (format.size() > 256) r.fail("strftime_now() format string too long");
  std::tm now{};
  if (r.options().fixed_now) {
    now = *r.options().fixed_now;
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &now);
  }
  char buf[4096];
  std::size_t n = format.empty() ? 0 : std::strftime(buf, sizeof buf, format.c_str(), &now);
  return Value(std::string(buf, n));
}

Value callable(const char* name, NativeFunction f) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->call = std::move(f);
  return Value(CallablePtr(std::move(c)));
}

}  // namespace

Value make_global(const std::string& name) {
  if (name == "range") return callable("range", global_range);
  if (name == "namespace") return callable("namespace", global_namespace);
  if (name == "dict") {
    return callable("dict", [](Renderer& r, CallArgs& args) { return Value::dict(object_from_args(r, args, "dict")); });
  }
  if (name == "raise_exception") {
    return callable("raise_exception", [](Renderer& r, CallArgs& args) -> Value {
      std::string message = args.positional.empty() ? "" : r.str_of(args.positional[0]);
      throw TemplateError(ErrorSource::raised, message);
    });
  }
  if (name == "strftime_now") return callable("strftime_now", global_strftime_now);
  return Value::undefined();
}

}  // namespace ember::chat
