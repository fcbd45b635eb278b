// Scalar and string filters, and the filter table.
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/filters.h"
#include "chat/pystr.h"

namespace ember::chat {
namespace {

Value filter_length(Renderer& r, const Value& v, CallArgs&) {
  switch (v.kind()) {
    case Kind::undefined: return Value(0);
    case Kind::string: return Value(static_cast<std::int64_t>(pystr::length(v.str())));
    case Kind::array: return Value(static_cast<std::int64_t>(v.array().items.size()));
    case Kind::object: return Value(static_cast<std::int64_t>(v.object().entries.size()));
    default: r.fail("object of type '" + type_name(v) + "' has no len()");
  }
}

Value filter_tojson(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "tojson"};
  JsonStyle style;
  style.ensure_ascii = a.bool_arg(0, "ensure_ascii", false);
  if (const Value* indent = a.get(1, "indent"); indent && !indent->is_none()) {
    if (indent->is_string()) {
      style.indent_text = indent->str();
      style.indent = 0;
    } else if (indent->is_int()) {
      style.indent = static_cast<int>(std::clamp<std::int64_t>(indent->as_int(), 0, 64));
    } else {
      r.fail("tojson indent must be an int or a string");
    }
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
    if (!sep->is_array() || sep->array().items.size() != 2 || !sep->array().items[0].is_string() ||
        !sep->array().items[1].is_string()) {
      r.fail("tojson separators must be a pair of strings");
    }
    style.item_separator = sep->array().items[0].str();
    style.key_separator = sep->array().items[1].str();
  }
  style.sort_keys = a.bool_arg(3, "sort_keys", false);
  style.max_bytes = r.options().limits.max_output_bytes;
  std::string out, error;
  if (!to_json_text(v, style, out, error)) r.fail(error);
  r.check_string_size(out.size());
  return Value(std::move(out));
}

Value filter_trim(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "trim"};
  const Value* chars = a.get(0, "chars");
  std::optional<std::string> set;
  if (chars && !chars->is_none()) set = r.str_of(*chars);
  return Value(pystr::strip(r.str_of(v), set, pystr::Side::both));
}

Value filter_items(Renderer& r, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_object()) r.fail("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [k, val] : v.object().entries) items.push_back(Value::list({Value(k), val}, true));
  return Value::list(std::move(items));
}

Value filter_default(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "default"};
  bool boolean = a.bool_arg(1, "boolean", false);
  if (v.is_undefined() || (boolean && !truthy(v))) {
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value("");
  }
  return v;
}

Value filter_replace(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "replace"};
  std::string s = r.str_of(v);
  const Value* old_v = a.get(0, "old");
  const Value* new_v = a.get(1, "new");
  if (!old_v || !new_v) r.fail("replace() needs old and new");
  std::string old = r.str_of(*old_v), with = r.str_of(*new_v);
  std::int64_t count = a.int_arg(2, "count", -1);
  std::int64_t hits = old.empty() ? static_cast<std::int64_t>(pystr::length(s)) + 1 : pystr::count(s, old);
  if (count >= 0) hits = std::min(hits, count);
  if (with.size() > old.size()) r.check_string_size(s.size() + static_cast<std::size_t>(hits) * (with.size() - old.size()));
  return Value(pystr::replace(s, old, with, count));
}

Value filter_first(Renderer& r, const Value& v, CallArgs&) {
  if (v.is_string()) return v.str().empty() ? Value::undefined("No first item, sequence was empty.")
                                            : Value(pystr::slice(v.str(), 0, 1, 1));
  std::vector<Value> items = r.iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filter_last(Renderer& r, const Value& v, CallArgs&) {
  std::vector<Value> items = r.iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value filter_list(Renderer& r, const Value& v, CallArgs&) { return Value::list(r.iterate(v)); }

Value filter_string(Renderer& r, const Value& v, CallArgs&) { return v.is_string() ? v : Value(r.str_of(v)); }

// Python int(text, base): whitespace, sign, underscores between digits, base prefixes.
std::optional<std::int64_t> parse_int(std::string text, int base) {
  text = pystr::strip(text, std::nullopt, pystr::Side::both);
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  if (i + 1 < text.size() && text[i] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i + 1])));
    int prefix_base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefix_base && (base == prefix_base || base == 0)) {
      base = prefix_base;
      i += 2;
      if (i < text.size() && text[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  if (i >= text.size()) return std::nullopt;
  __int128 value = 0;
  bool last_underscore = true;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      if (last_underscore) return std::nullopt;
      last_underscore = true;
      continue;
    }
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                                                          : 99;
    if (d >= base) return std::nullopt;
    value = value * base + d;
    if (value > (static_cast<__int128>(1) << 63)) return std::nullopt;
    last_underscore = false;
  }
  if (last_underscore) return std::nullopt;
  value = negative ? -value : value;
  if (value > INT64_MAX || value < INT64_MIN) return std::nullopt;
  return static_cast<std::int64_t>(value);
}

// Python float(text).
std::optional<double> parse_float(const std::string& raw) {
  std::string text = pystr::strip(raw, std::nullopt, pystr::Side::both);
  std::string clean;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == 'x' || c == 'X' || c == 'p' || c == 'P') return std::nullopt;
    if (c == '_') {
      if (i == 0 || i + 1 == text.size() || !std::isdigit(static_cast<unsigned char>(text[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    clean.push_back(c);
  }
  if (clean.empty()) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

Value filter_int(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "int"};
  const Value* fallback = a.get(0, "default");
  Value def = fallback ? *fallback : Value(0);
  int base = static_cast<int>(a.int_arg(1, "base", 10));
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) r.fail("cannot convert float to integer");
    return Value(static_cast<std::int64_t>(d));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.str(), base)) return Value(*i);
    if (auto d = parse_float(v.str()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return Value(static_cast<std::int64_t>(*d));
    }
  }
  if (v.is_undefined()) r.fail_undefined(v);
  return def;
}

Value filter_float(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "float"};
  const Value* fallback = a.get(0, "default");
  Value def = fallback ? *fallback : Value(0.0);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_float(v.str())) return Value(*d);
  }
  if (v.is_undefined()) r.fail_undefined(v);
  return def;
}

Value filter_abs(Renderer& r, const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) r.fail("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  r.fail("bad operand type for abs(): '" + type_name(v) + "'");
}

Value filter_round(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "round"};
  std::int64_t precision = std::clamp<std::int64_t>(a.int_arg(0, "precision", 0), -300, 300);
  std::string method = a.string_arg(1, "method", "common");
  if (!v.is_number()) r.fail("round() needs a number, got " + type_name(v));
  if (method == "common") {
    if (!v.is_float()) return Value(v.as_int());
    double d = v.as_double();
    if (!std::isfinite(d)) return v;
    if (precision == 0) return Value(std::nearbyint(d));
    char buf[512];
    if (precision > 0) {
      snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), d);
      return Value(std::strtod(buf, nullptr));
    }
    double scale = std::pow(10.0, static_cast<double>(-precision));
    return Value(std::nearbyint(d / scale) * scale);
  }
  if (method != "ceil" && method != "floor") r.fail("method must be 'common', 'ceil' or 'floor'");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double scaled = v.as_double() * scale;
  return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_reverse(Renderer& r, const Value& v, CallArgs&) {
  if (v.is_string()) return Value(pystr::slice(v.str(), std::nullopt, std::nullopt, -1));
  std::vector<Value> items = r.iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value filter_indent(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "indent"};
  const Value* width = a.get(0, "width");
  std::string unit = width && width->is_string() ? width->str() : std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(a.int_arg(0, "width", 4), 0, 1024)), ' ');
  bool first = a.bool_arg(1, "first", false), blank = a.bool_arg(2, "blank", false);
  std::string s = r.str_of(v) + "\n";
  std::vector<std::string> lines = pystr::splitlines(s, false);
  r.check_string_size(s.size() + lines.size() * unit.size());
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += unit;
    }
    out += lines[i];
  }
  return Value(first ? unit + out : out);
}

Value filter_center(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "center"};
  std::string s = r.str_of(v);
  auto width = static_cast<std::size_t>(std::clamp<std::int64_t>(a.int_arg(0, "width", 80), 0, 1 << 20));
  std::size_t n = pystr::length(s);
  if (width <= n) return Value(s);
  std::size_t pad = width - n, left = pad / 2 + (pad & width & 1);
  return Value(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

Value filter_escape(Renderer& r, const Value& v, CallArgs&) {
  std::string out;
  for (char c : r.str_of(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

Value filter_attr(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "attr"};
  return r.get_attr(v, a.string_arg(0, "name", ""));
}

Value filter_wordcount(Renderer& r, const Value& v, CallArgs&) {
  std::int64_t n = 0;
  bool in_word = false;
  for (char c : r.str_of(v)) {
    bool w = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (static_cast<unsigned char>(c) >= 0x80);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

const std::unordered_map<std::string, FilterFn>& filter_table() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"length", filter_length}, {"count", filter_length}, {"tojson", filter_tojson}, {"trim", filter_trim},
      {"items", filter_items}, {"default", filter_default}, {"d", filter_default}, {"replace", filter_replace},
      {"first", filter_first}, {"last", filter_last}, {"list", filter_list}, {"string", filter_string},
      {"int", filter_int}, {"float", filter_float}, {"abs", filter_abs}, {"round", filter_round},
      {"reverse", filter_reverse}, {"indent", filter_indent}, {"center", filter_center},
      {"escape", filter_escape}, {"e", filter_escape}, {"attr", filter_attr}, {"wordcount", filter_wordcount},
      {"map", filter_map}, {"select", filter_select}, {"reject", filter_reject},
      {"selectattr", filter_selectattr}, {"rejectattr", filter_rejectattr}, {"sort", filter_sort},
      {"unique", filter_unique}, {"min", filter_min}, {"max", filter_max}, {"sum", filter_sum},
      {"join", filter_join}, {"dictsort", filter_dictsort},
      {"safe", [](Renderer& r, const Value& v, CallArgs&) { return v.is_string() ? v : Value(r.str_of(v)); }},
      {"upper", [](Renderer& r, const Value& v, CallArgs&) { return Value(pystr::upper(r.str_of(v))); }},
      {"lower", [](Renderer& r, const Value& v, CallArgs&) { return Value(pystr::lower(r.str_of(v))); }},
      {"capitalize", [](Renderer& r, const Value& v, CallArgs&) { return Value(pystr::capitalize(r.str_of(v))); }},
      {"title", [](Renderer& r, const Value& v, CallArgs&) { return Value(pystr::jinja_title(r.str_of(v))); }},
  };
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filter_table().count(name) > 0; }

Value apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args) {
  return filter_table().at(name)(r, input, args);
}

}  // namespace ember::chat
