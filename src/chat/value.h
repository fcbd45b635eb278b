// The values a template computes with: Python's types as jinja2 sees them.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ember::chat {

class Value;
class Renderer;

struct Undefined {
  std::string hint;  // why it is undefined: "'x' is undefined"
};

// Arrays and objects record how deeply they nest and whether they hold a handle (namespace
// or callable), so the renderer can refuse values that would nest without bound, form a
// cycle through a namespace, or outlive the scope a callable refers to.
struct Array {
  std::vector<Value> items;
  bool is_tuple = false;  // prints as (a, b) instead of [a, b]
  int depth = 1;
  bool holds_handle = false;
};

// A Python dict with string keys, in insertion order.
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  int depth = 1;
  bool holds_handle = false;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

// namespace(): the one mutable object a template can change with `set ns.x = ...`.
struct Namespace {
  Object attrs;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* keyword_arg(std::string_view name) const;
};

using NativeFunction = std::function<Value(Renderer&, CallArgs&)>;

struct Callable {
  std::string name;
  NativeFunction call;
};

using StringPtr = std::shared_ptr<const std::string>;
using ArrayPtr = std::shared_ptr<const Array>;
using ObjectPtr = std::shared_ptr<const Object>;
using NamespacePtr = std::shared_ptr<Namespace>;
using CallablePtr = std::shared_ptr<const Callable>;

enum class Kind { undefined, none, boolean, integer, floating, string, array, object, ns, callable };

class Value {
 public:
  Value() : v_(nullptr) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(Undefined u) : v_(std::move(u)) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(std::int64_t{i}) {}
  Value(std::int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  // Strings are shared, immutable: copying a Value never copies text.
  Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(ArrayPtr a) : v_(std::move(a)) {}
  Value(ObjectPtr o) : v_(std::move(o)) {}
  Value(NamespacePtr n) : v_(std::move(n)) {}
  Value(CallablePtr c) : v_(std::move(c)) {}

  static Value undefined(std::string hint = {}) { return Value(Undefined{std::move(hint)}); }
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict(Object o);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::undefined; }
  bool is_none() const { return kind() == Kind::none; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_int() const { return kind() == Kind::integer; }
  bool is_float() const { return kind() == Kind::floating; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::string; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }

  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const;  // bool or int
  double as_double() const;     // bool, int or float
  const std::string& str() const { return *std::get<StringPtr>(v_); }
  const Array& array() const { return *std::get<ArrayPtr>(v_); }
  const Object& object() const { return *std::get<ObjectPtr>(v_); }
  Namespace& ns() const { return *std::get<NamespacePtr>(v_); }
  const Callable& callable() const { return *std::get<CallablePtr>(v_); }
  int depth() const;             // 0 for scalars
  bool holds_handle() const;  // is or contains a namespace or callable

 private:
  std::variant<Undefined, std::nullptr_t, bool, std::int64_t, double, StringPtr, ArrayPtr, ObjectPtr,
               NamespacePtr, CallablePtr>
      v_;
};

// Python semantics, used by the evaluator and the filters.
bool truthy(const Value& v);
// str(v) (Undefined prints as "") and repr(v). Results longer than max_bytes throw
// TemplateError(limit) before they are built in full.
std::string to_str(const Value& v, std::size_t max_bytes = SIZE_MAX);
std::string to_repr(const Value& v, std::size_t max_bytes = SIZE_MAX);
std::string format_float(double d);   // float.__repr__
bool equal(const Value& a, const Value& b);
// a < b for numbers, strings and sequences; nullopt where Python raises TypeError.
std::optional<bool> less(const Value& a, const Value& b);
std::string type_name(const Value& v);  // Python's type name, for error messages

// Throws TemplateError for input nested deeper than max_depth.
Value from_json(const nlohmann::ordered_json& j, int max_depth = 256);

struct JsonStyle {
  int indent = -1;                 // < 0: one line
  std::string indent_text;         // used when indent_text is set (indent="\t")
  std::string item_separator;      // default ", " (one line) or "," (indented)
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::size_t max_bytes = SIZE_MAX;  // longer output fails with an error
};
// json.dumps(v, ...); false where v holds something JSON cannot represent.
bool to_json_text(const Value& v, const JsonStyle& style, std::string& out, std::string& error);

}  // namespace ember::chat
