// jinja2's tests: `x is defined`, `n is divisibleby 3`, ...
#include <unordered_map>

#include "chat/pystr.h"
#include "chat/render.h"

namespace ember::chat {
namespace {

using TestFn = bool (*)(Renderer&, const Value&, CallArgs&);

const Value& arg0(Renderer& r, CallArgs& args, const char* test) {
  if (args.positional.empty()) r.fail(std::string("test '") + test + "' needs an argument");
  return args.positional[0];
}

std::int64_t int_input(Renderer& r, const Value& v, const char* test) {
  if (v.is_undefined()) r.fail_undefined(v);
  if (!v.is_int() && !v.is_bool()) r.fail(std::string("test '") + test + "' needs an integer, got " + type_name(v));
  return v.as_int();
}

bool ordered(Renderer& r, const Value& a, const Value& b, bool or_equal) {
  if (a.is_undefined()) r.fail_undefined(a);
  if (b.is_undefined()) r.fail_undefined(b);
  std::optional<bool> lt = less(a, b);
  if (!lt) r.fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
  return *lt || (or_equal && equal(a, b));
}

bool same_as(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::array: return &a.array() == &b.array();
    case Kind::object: return &a.object() == &b.object();
    case Kind::ns: return &a.ns() == &b.ns();
    case Kind::callable: return &a.callable() == &b.callable();
    case Kind::floating: return false;
    default: return equal(a, b);
  }
}

bool test_in(Renderer& r, const Value& v, CallArgs& args) {
  const Value& seq = arg0(r, args, "in");
  if (seq.is_string()) {
    if (!v.is_string()) r.fail("'in <string>' requires string as left operand, not " + type_name(v));
    return seq.str().find(v.str()) != std::string::npos;
  }
  if (seq.is_object()) return v.is_string() && seq.object().find(v.str()) != nullptr;
  for (const Value& item : r.iterate(seq)) {
    if (equal(item, v)) return true;
  }
  return false;
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", [](Renderer&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Renderer&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Renderer&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"boolean", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool(); }},
      {"true", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Renderer&, const Value& v, CallArgs&) { return v.is_int(); }},
      {"float", [](Renderer&, const Value& v, CallArgs&) { return v.is_float(); }},
      {"number", [](Renderer&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"string", [](Renderer&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Renderer&, const Value& v, CallArgs&) { return v.is_object(); }},
      {"iterable",
       [](Renderer&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_array() || v.is_object();
       }},
      {"sequence",
       [](Renderer&, const Value& v, CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_array() || v.is_object();
       }},
      {"callable", [](Renderer&, const Value& v, CallArgs&) { return v.kind() == Kind::callable; }},
      {"escaped", [](Renderer&, const Value&, CallArgs&) { return false; }},
      {"odd", [](Renderer& r, const Value& v, CallArgs&) { return int_input(r, v, "odd") % 2 != 0; }},
      {"even", [](Renderer& r, const Value& v, CallArgs&) { return int_input(r, v, "even") % 2 == 0; }},
      {"divisibleby",
       [](Renderer& r, const Value& v, CallArgs& args) {
         std::int64_t d = int_input(r, arg0(r, args, "divisibleby"), "divisibleby");
         if (d == 0) r.fail("integer division or modulo by zero");
         return d == -1 || int_input(r, v, "divisibleby") % d == 0;
       }},
      {"eq", [](Renderer& r, const Value& v, CallArgs& a) { return equal(v, arg0(r, a, "eq")); }},
      {"ne", [](Renderer& r, const Value& v, CallArgs& a) { return !equal(v, arg0(r, a, "ne")); }},
      {"lt", [](Renderer& r, const Value& v, CallArgs& a) { return ordered(r, v, arg0(r, a, "lt"), false); }},
      {"le", [](Renderer& r, const Value& v, CallArgs& a) { return ordered(r, v, arg0(r, a, "le"), true); }},
      {"gt", [](Renderer& r, const Value& v, CallArgs& a) { return ordered(r, arg0(r, a, "gt"), v, false); }},
      {"ge", [](Renderer& r, const Value& v, CallArgs& a) { return ordered(r, arg0(r, a, "ge"), v, true); }},
      {"sameas", [](Renderer& r, const Value& v, CallArgs& a) { return same_as(v, arg0(r, a, "sameas")); }},
      {"in", test_in},
      {"lower",
       [](Renderer& r, const Value& v, CallArgs&) {
         std::string s = r.str_of(v);
         return pystr::lower(s) == s && pystr::upper(s) != s;
       }},
      {"upper",
       [](Renderer& r, const Value& v, CallArgs&) {
         std::string s = r.str_of(v);
         return pystr::upper(s) == s && pystr::lower(s) != s;
       }},
      {"filter", [](Renderer&, const Value& v, CallArgs&) { return v.is_string() && has_filter(v.str()); }},
      {"test", [](Renderer&, const Value& v, CallArgs&) { return v.is_string() && has_test(v.str()); }},
  };
  return table;
}

const std::unordered_map<std::string, std::string>& aliases() {
  static const std::unordered_map<std::string, std::string> table = {
      {"==", "eq"}, {"equalto", "eq"}, {"!=", "ne"}, {"<", "lt"}, {"lessthan", "lt"}, {"<=", "le"},
      {">", "gt"},  {"greaterthan", "gt"}, {">=", "ge"}};
  return table;
}

const std::string& canonical(const std::string& name) {
  auto it = aliases().find(name);
  return it == aliases().end() ? name : it->second;
}

}  // namespace

bool has_test(const std::string& name) { return test_table().count(canonical(name)) > 0; }

bool apply_test(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  return test_table().at(canonical(name))(r, input, args);
}

}  // namespace ember::chat
