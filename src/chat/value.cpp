#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "chat/error.h"
#include "chat/pystr.h"

namespace ember::chat {

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(std::string key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::keyword_arg(std::string_view name) const {
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  auto a = std::make_shared<Array>();
  a->items = std::move(items);
  a->is_tuple = is_tuple;
  for (const Value& v : a->items) {
    a->depth = std::max(a->depth, v.depth() + 1);
    a->holds_handle = a->holds_handle || v.holds_handle();
  }
  return Value(ArrayPtr(std::move(a)));
}

Value Value::dict(Object o) {
  o.depth = 1;
  o.holds_handle = false;
  for (const auto& [k, v] : o.entries) {
    o.depth = std::max(o.depth, v.depth() + 1);
    o.holds_handle = o.holds_handle || v.holds_handle();
  }
  return Value(ObjectPtr(std::make_shared<Object>(std::move(o))));
}

int Value::depth() const {
  if (is_array()) return array().depth;
  if (is_object()) return object().depth;
  return 0;
}

bool Value::holds_handle() const {
  if (is_array()) return array().holds_handle;
  if (is_object()) return object().holds_handle;
  return kind() == Kind::ns || kind() == Kind::callable;
}

std::int64_t Value::as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<std::int64_t>(v_); }

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return v.as_bool();
    case Kind::integer: return v.as_int() != 0;
    case Kind::floating: return v.as_double() != 0.0;
    case Kind::string: return !v.str().empty();
    case Kind::array: return !v.array().items.empty();
    case Kind::object: return !v.object().entries.empty();
    case Kind::ns:
    case Kind::callable: return true;
  }
  return false;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      std::size_t n_int = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() < n_int) digits.append(n_int - digits.size(), '0');
      out += digits.substr(0, n_int);
      out += '.';
      out += digits.size() > n_int ? digits.substr(n_int) : "0";
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exponent - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

namespace {

// Builds str()/repr() text, failing as soon as it grows past max_bytes.
struct ReprWriter {
  std::string out;
  std::size_t max_bytes;

  void add(std::string_view text) {
    if (out.size() + text.size() > max_bytes) {
      throw TemplateError(ErrorSource::limit, "string longer than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(text);
  }

  void sequence(const Array& a) {
    add(a.is_tuple ? "(" : "[");
    for (std::size_t i = 0; i < a.items.size(); ++i) {
      if (i) add(", ");
      repr(a.items[i]);
    }
    if (a.is_tuple && a.items.size() == 1) add(",");
    add(a.is_tuple ? ")" : "]");
  }

  void dict(const Object& o) {
    add("{");
    for (std::size_t i = 0; i < o.entries.size(); ++i) {
      if (i) add(", ");
      add(pystr::repr(o.entries[i].first));
      add(": ");
      repr(o.entries[i].second);
    }
    add("}");
  }

  void repr(const Value& v) {
    switch (v.kind()) {
      case Kind::undefined: add("Undefined"); return;
      case Kind::string: add(pystr::repr(v.str())); return;
      default: str(v); return;
    }
  }

  void str(const Value& v) {
    switch (v.kind()) {
      case Kind::undefined: return;
      case Kind::none: add("None"); return;
      case Kind::boolean: add(v.as_bool() ? "True" : "False"); return;
      case Kind::integer: add(std::to_string(v.as_int())); return;
      case Kind::floating: add(format_float(v.as_double())); return;
      case Kind::string: add(v.str()); return;
      case Kind::array: sequence(v.array()); return;
      case Kind::object: dict(v.object()); return;
      case Kind::ns:
        add("<Namespace ");
        dict(v.ns().attrs);
        add(">");
        return;
      case Kind::callable: add("<function " + v.callable().name + ">"); return;
    }
  }
};

}  // namespace

std::string to_repr(const Value& v, std::size_t max_bytes) {
  ReprWriter w{{}, max_bytes};
  w.repr(v);
  return std::move(w.out);
}

std::string to_str(const Value& v, std::size_t max_bytes) {
  if (v.is_string()) {
    if (v.str().size() > max_bytes) {
      throw TemplateError(ErrorSource::limit, "string longer than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    return v.str();
  }
  ReprWriter w{{}, max_bytes};
  w.str(v);
  return std::move(w.out);
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.str() == b.str();
    case Kind::array: {
      const Array &x = a.array(), &y = b.array();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t i = 0; i < x.items.size(); ++i) {
        if (!equal(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Kind::object: {
      const Object &x = a.object(), &y = b.object();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equal(v, *other)) return false;
      }
      return true;
    }
    case Kind::ns: return &a.ns() == &b.ns();
    case Kind::callable: return &a.callable() == &b.callable();
    default: return false;
  }
}

std::optional<bool> less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_array() && b.is_array() && a.array().is_tuple == b.array().is_tuple) {
    const auto &x = a.array().items, &y = b.array().items;
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equal(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return std::nullopt;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::array: return v.array().is_tuple ? "tuple" : "list";
    case Kind::object: return "dict";
    case Kind::ns: return "Namespace";
    case Kind::callable: return "function";
  }
  return "object";
}

Value from_json(const nlohmann::ordered_json& j, int max_depth) {
  using T = nlohmann::ordered_json::value_t;
  if (max_depth < 0) throw TemplateError(ErrorSource::render, "context value nested too deeply");
  switch (j.type()) {
    case T::null: return Value();
    case T::boolean: return Value(j.get<bool>());
    case T::number_integer: return Value(j.get<std::int64_t>());
    case T::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return Value(static_cast<std::int64_t>(u));
      }
      return Value(static_cast<double>(u));
    }
    case T::number_float: return Value(j.get<double>());
    case T::string: return Value(j.get_ref<const std::string&>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e, max_depth - 1));
      return Value::list(std::move(items));
    }
    case T::object: {
      Object o;
      o.entries.reserve(j.size());
      for (const auto& [k, v] : j.items()) o.entries.emplace_back(k, from_json(v, max_depth - 1));
      return Value::dict(std::move(o));
    }
    default: return Value();
  }
}

namespace {

void append_json_string(std::string_view s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (char32_t c : pystr::decode(s)) {
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c < 0x20) {
      snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else if (ensure_ascii && c >= 0x80 && c <= 0x10ffff) {
      if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 + (v >> 10)),
                 static_cast<unsigned>(0xdc00 + (v & 0x3ff)));
      } else {
        snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      pystr::append_utf8(out, c);
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonStyle& style;
  std::string& out;
  std::string& error;
  std::string item_separator;

  void newline(int level) {
    if (style.indent < 0 && style.indent_text.empty()) return;
    out += '\n';
    std::string unit = style.indent_text.empty() ? std::string(static_cast<std::size_t>(style.indent), ' ')
                                                 : style.indent_text;
    for (int i = 0; i < level; ++i) out += unit;
  }

  bool write(const Value& v, int level) {
    if (level > 256) return fail("tojson: value nested too deeply");
    if (out.size() > style.max_bytes) return fail("tojson output longer than the limit of " + std::to_string(style.max_bytes) + " bytes");
    switch (v.kind()) {
      case Kind::none: out += "null"; return true;
      case Kind::boolean: out += v.as_bool() ? "true" : "false"; return true;
      case Kind::integer: out += std::to_string(v.as_int()); return true;
      case Kind::floating: return write_float(v.as_double());
      case Kind::string: append_json_string(v.str(), style.ensure_ascii, out); return true;
      case Kind::array: return write_array(v.array(), level);
      case Kind::object: return write_object(v.object(), level);
      default: return fail("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }

  bool write_float(double d) {
    if (std::isnan(d)) {
      out += "NaN";
    } else if (std::isinf(d)) {
      out += d < 0 ? "-Infinity" : "Infinity";
    } else {
      out += format_float(d);
    }
    return true;
  }

  bool write_array(const Array& a, int level) {
    if (a.items.empty()) {
      out += "[]";
      return true;
    }
    out += '[';
    for (std::size_t i = 0; i < a.items.size(); ++i) {
      if (i) out += item_separator;
      newline(level + 1);
      if (!write(a.items[i], level + 1)) return false;
    }
    newline(level);
    out += ']';
    return true;
  }

  bool write_object(const Object& o, int level) {
    if (o.entries.empty()) {
      out += "{}";
      return true;
    }
    std::vector<const std::pair<std::string, Value>*> order;
    for (const auto& e : o.entries) order.push_back(&e);
    if (style.sort_keys) {
      std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
    }
    out += '{';
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i) out += item_separator;
      newline(level + 1);
      append_json_string(order[i]->first, style.ensure_ascii, out);
      out += style.key_separator;
      if (!write(order[i]->second, level + 1)) return false;
    }
    newline(level);
    out += '}';
    return true;
  }
};

}  // namespace

bool to_json_text(const Value& v, const JsonStyle& style, std::string& out, std::string& error) {
  bool indented = style.indent >= 0 || !style.indent_text.empty();
  std::string item_separator = style.item_separator.empty() ? (indented ? "," : ", ") : style.item_separator;
  JsonWriter writer{style, out, error, item_separator};
  return writer.write(v, 0);
}

}  // namespace ember::chat
