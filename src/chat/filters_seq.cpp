// Filters over sequences: map, select/reject, selectattr/rejectattr, sort, unique, min,
// max, sum, join, dictsort. jinja2 returns generators from some of these; ember returns
// lists, which print differently but iterate, join and count the same.
#include <algorithm>

#include "chat/filters.h"
#include "chat/pystr.h"

namespace ember::chat {

Value attribute_path(Renderer& r, const Value& item, const std::string& path) {
  Value current = item;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18) {
      current = r.get_item(current, Value(static_cast<std::int64_t>(std::stoll(part))));
    } else {
      current = r.get_item(current, Value(part));
    }
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

namespace {

// Positional args after the first `skip`, plus all keyword args: what a test or filter
// named inside select/map receives.
CallArgs rest_args(const CallArgs& args, std::size_t skip) {
  CallArgs rest;
  for (std::size_t i = skip; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

Value select_impl(Renderer& r, const Value& v, CallArgs& args, bool by_attribute, bool keep_matching) {
  std::size_t at = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) r.fail("selectattr needs an attribute name");
    attribute = args.positional[at++].str();
  }
  std::string test;
  if (at < args.positional.size()) {
    if (!args.positional[at].is_string()) r.fail("test name must be a string");
    test = args.positional[at++].str();
    if (!has_test(test)) r.fail("No test named '" + test + "'.");
  }
  CallArgs test_args = rest_args(args, at);
  std::vector<Value> out;
  for (const Value& item : r.iterate(v)) {
    r.tick();
    Value subject = by_attribute ? attribute_path(r, item, attribute) : item;
    bool ok;
    if (test.empty()) {
      ok = truthy(subject);
    } else {
      CallArgs copy = test_args;
      ok = apply_test(r, test, subject, copy);
    }
    if (ok == keep_matching) out.push_back(item);
  }
  return Value::list(std::move(out));
}

// Sort key: the (optional) attribute, lower-cased when the comparison ignores case.
Value sort_key(Renderer& r, const Value& item, const std::string& attribute, bool case_sensitive) {
  Value key = attribute.empty() ? item : attribute_path(r, item, attribute);
  if (!case_sensitive && key.is_string()) return Value(pystr::lower(key.str()));
  return key;
}

bool key_less(Renderer& r, const Value& a, const Value& b) {
  if (a.is_undefined()) r.fail_undefined(a);
  if (b.is_undefined()) r.fail_undefined(b);
  std::optional<bool> lt = less(a, b);
  if (!lt) r.fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
  return *lt;
}

Value min_max(Renderer& r, const Value& v, CallArgs& args, bool want_max) {
  ArgReader a{r, args, want_max ? "max" : "min"};
  bool case_sensitive = a.bool_arg(0, "case_sensitive", false);
  std::string attribute = a.string_arg(1, "attribute", "");
  std::vector<Value> items = r.iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  std::size_t best = 0;
  Value best_key = sort_key(r, items[0], attribute, case_sensitive);
  for (std::size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(r, items[i], attribute, case_sensitive);
    if (want_max ? key_less(r, best_key, key) : key_less(r, key, best_key)) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

}  // namespace

Value filter_map(Renderer& r, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (const Value* attribute = args.keyword_arg("attribute")) {
    const Value* fallback = args.keyword_arg("default");
    for (const Value& item : r.iterate(v)) {
      Value mapped = attribute_path(r, item, r.str_of(*attribute));
      out.push_back(mapped.is_undefined() && fallback ? *fallback : mapped);
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) r.fail("map needs a filter name or attribute=");
  std::string filter = args.positional[0].str();
  if (!has_filter(filter)) r.fail("No filter named '" + filter + "'.");
  CallArgs filter_args = rest_args(args, 1);
  for (const Value& item : r.iterate(v)) {
    r.tick();
    CallArgs copy = filter_args;
    out.push_back(apply_filter(r, filter, item, copy));
  }
  return Value::list(std::move(out));
}

Value filter_select(Renderer& r, const Value& v, CallArgs& args) { return select_impl(r, v, args, false, true); }
Value filter_reject(Renderer& r, const Value& v, CallArgs& args) { return select_impl(r, v, args, false, false); }
Value filter_selectattr(Renderer& r, const Value& v, CallArgs& args) { return select_impl(r, v, args, true, true); }
Value filter_rejectattr(Renderer& r, const Value& v, CallArgs& args) { return select_impl(r, v, args, true, false); }

Value filter_sort(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "sort"};
  bool reverse = a.bool_arg(0, "reverse", false);
  bool case_sensitive = a.bool_arg(1, "case_sensitive", false);
  std::string attribute = a.string_arg(2, "attribute", "");
  std::vector<Value> items = r.iterate(v);
  std::vector<std::pair<Value, std::size_t>> keyed;
  keyed.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) keyed.emplace_back(sort_key(r, items[i], attribute, case_sensitive), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    r.tick();
    return reverse ? key_less(r, y.first, x.first) : key_less(r, x.first, y.first);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (const auto& k : keyed) out.push_back(items[k.second]);
  return Value::list(std::move(out));
}

Value filter_unique(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "unique"};
  bool case_sensitive = a.bool_arg(0, "case_sensitive", false);
  std::string attribute = a.string_arg(1, "attribute", "");
  std::vector<Value> out, seen;
  for (const Value& item : r.iterate(v)) {
    Value key = sort_key(r, item, attribute, case_sensitive);
    bool dup = false;
    for (const Value& s : seen) {
      r.tick();
      if (equal(s, key)) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_min(Renderer& r, const Value& v, CallArgs& args) { return min_max(r, v, args, false); }
Value filter_max(Renderer& r, const Value& v, CallArgs& args) { return min_max(r, v, args, true); }

Value filter_sum(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "sum"};
  std::string attribute = a.string_arg(0, "attribute", "");
  const Value* start = a.get(1, "start");
  Value total = start ? *start : Value(0);
  for (const Value& item : r.iterate(v)) {
    Value x = attribute.empty() ? item : attribute_path(r, item, attribute);
    if (!x.is_number() || !total.is_number()) r.fail("sum() supports numbers only, got " + type_name(x));
    if (x.is_float() || total.is_float()) {
      total = Value(total.as_double() + x.as_double());
    } else {
      std::int64_t s = 0;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &s)) r.fail("integer overflow");
      total = Value(s);
    }
  }
  return total;
}

Value filter_join(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "join"};
  const Value* sep = a.get(0, "d");
  std::string separator = sep ? r.str_of(*sep) : "";
  std::string attribute = a.string_arg(1, "attribute", "");
  std::string out;
  bool first = true;
  for (const Value& item : r.iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += r.str_of(attribute.empty() ? item : attribute_path(r, item, attribute));
    r.check_string_size(out.size());
  }
  return Value(std::move(out));
}

Value filter_dictsort(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a{r, args, "dictsort"};
  bool case_sensitive = a.bool_arg(0, "case_sensitive", false);
  std::string by = a.string_arg(1, "by", "key");
  bool reverse = a.bool_arg(2, "reverse", false);
  if (!v.is_object()) r.fail("dictsort needs a mapping");
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.object().entries) pairs.push_back(Value::list({Value(k), val}, true));
  std::size_t pos = by == "value" ? 1 : 0;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    Value kx = sort_key(r, x.array().items[pos], "", case_sensitive);
    Value ky = sort_key(r, y.array().items[pos], "", case_sensitive);
    return reverse ? key_less(r, ky, kx) : key_less(r, kx, ky);
  });
  return Value::list(std::move(pairs));
}

}  // namespace ember::chat
