// The fixed JSON rules: whitespace, strings (UTF-8 and escapes), numbers, formats, any value.
#include <fmt/format.h>

#include "grammar/schema_impl.h"

namespace ember::grammar {

void SchemaCompiler::Impl::fail(ErrorKind kind, const std::string& path, const std::string& message) {
  if (failed()) return;
  error_kind = kind;
  error = path.empty() ? message : fmt::format("{} (at {})", message, path);
}

bool SchemaCompiler::Impl::over_limits(const std::string& path) {
  if (!failed() && g.over(opt.limits))
    fail(ErrorKind::invalid_argument, path,
         fmt::format("the schema is too large: its grammar passes {} rules or {} elements", opt.limits.max_rules,
                     opt.limits.max_elements));
  return failed();
}

uint32_t SchemaCompiler::Impl::new_rule(const std::string& hint) {
  return g.add_rule(fmt::format("{}-{}", hint, n_rule_names++));
}

std::vector<Element> SchemaCompiler::Impl::lit(std::string_view bytes) {
  std::vector<Element> out;
  for (char ch : bytes) {
    ByteClass c;
    c.add(uint8_t(ch));
    out.push_back(g.bytes(c));
  }
  return out;
}

Element SchemaCompiler::Impl::cls(uint8_t lo, uint8_t hi) {
  ByteClass c;
  c.add_range(lo, hi);
  return g.bytes(c);
}

uint32_t SchemaCompiler::Impl::rule(const std::string& hint, const std::vector<std::vector<Element>>& alts) {
  const uint32_t r = new_rule(hint);
  for (const auto& a : alts) g.add_alternative(r, a);
  return r;
}

// item{0,n} as a chain: r_k ::= "" | item r_{k-1}.
uint32_t SchemaCompiler::Impl::repeat_upto(const std::string& hint, Element item, int n) {
  uint32_t r = rule(hint, {{}});
  for (int k = 1; k <= n; ++k) r = rule(hint, {{}, {item, Grammar::ref(r)}});
  return r;
}

uint32_t SchemaCompiler::Impl::digits_upto(int n) {
  const std::string key = fmt::format("digits{}", n);
  if (auto it = shared.find(key); it != shared.end()) return it->second;
  return shared[key] = repeat_upto(key, cls('0', '9'), n);
}

uint32_t SchemaCompiler::Impl::ws() {
  if (auto it = shared.find("ws"); it != shared.end()) return it->second;
  ByteClass c;
  for (char ch : {' ', '\t', '\n'}) c.add(uint8_t(ch));
  return shared["ws"] = repeat_upto("ws", g.bytes(c), opt.max_whitespace);
}

// One character of a JSON string: printable ASCII but '"' and '\', a well-formed UTF-8
// sequence (no surrogates, no overlongs), or an escape.
uint32_t SchemaCompiler::Impl::string_char() {
  if (auto it = shared.find("char"); it != shared.end()) return it->second;
  ByteClass ascii;
  ascii.add_range(0x20, 0x7f);
  ascii.bits[0] &= ~(uint64_t(1) << '"');
  ascii.bits[1] &= ~(uint64_t(1) << ('\\' - 64));
  const Element cont = cls(0x80, 0xbf);
  ByteClass esc;
  for (char ch : std::string_view("\"\\/bfnrt")) esc.add(uint8_t(ch));
  ByteClass hex;
  hex.add_range('0', '9');
  hex.add_range('a', 'f');
  hex.add_range('A', 'F');
  const Element h = g.bytes(hex);
  ByteClass lead3;
  lead3.add_range(0xe1, 0xec);
  lead3.add_range(0xee, 0xef);
  const uint32_t r = rule("char", {
      {g.bytes(ascii)},
      {cls(0xc2, 0xdf), cont},
      {cls(0xe0, 0xe0), cls(0xa0, 0xbf), cont},
      {g.bytes(lead3), cont, cont},
      {cls(0xed, 0xed), cls(0x80, 0x9f), cont},
      {cls(0xf0, 0xf0), cls(0x90, 0xbf), cont, cont},
      {cls(0xf1, 0xf3), cont, cont, cont},
      {cls(0xf4, 0xf4), cls(0x80, 0x8f), cont, cont},
      {cls('\\', '\\'), g.bytes(esc)},
      {cls('\\', '\\'), cls('u', 'u'), h, h, h, h},
  });
  return shared["char"] = r;
}

uint32_t SchemaCompiler::Impl::string(int min_len, int max_len) {
  const std::string key = fmt::format("string{{{},{}}}", min_len, max_len);
  if (auto it = shared.find(key); it != shared.end()) return it->second;
  const Element ch = Grammar::ref(string_char());
  std::vector<Element> seq = lit("\"");
  for (int i = 0; i < min_len; ++i) seq.push_back(ch);
  if (max_len < 0) {
    const uint32_t star = new_rule("chars");
    g.add_alternative(star, {});
    g.add_alternative(star, {ch, Grammar::ref(star)});
    seq.push_back(Grammar::ref(star));
  } else if (max_len > min_len) {
    seq.push_back(Grammar::ref(repeat_upto("chars", ch, max_len - min_len)));
  }
  seq.push_back(lit("\"")[0]);
  return shared[key] = rule("string", {seq});
}

// Integers have at most 19 digits and numbers at most 16 fraction and 3 exponent digits,
// so a model cannot run on in one number forever (docs/grammar.md).
uint32_t SchemaCompiler::Impl::integer() {
  if (auto it = shared.find("integer"); it != shared.end()) return it->second;
  const uint32_t magnitude = rule("int", {lit("0"), {cls('1', '9'), Grammar::ref(digits_upto(18))}});
  const uint32_t sign = rule("sign", {{}, lit("-")});
  return shared["integer"] = rule("integer", {{Grammar::ref(sign), Grammar::ref(magnitude)}});
}

uint32_t SchemaCompiler::Impl::number() {
  if (auto it = shared.find("number"); it != shared.end()) return it->second;
  const Element digit = cls('0', '9');
  const uint32_t frac = rule("frac", {{}, {lit(".")[0], digit, Grammar::ref(digits_upto(15))}});
  ByteClass e, pm;
  e.add('e');
  e.add('E');
  pm.add('+');
  pm.add('-');
  const uint32_t exp_sign = rule("exp-sign", {{}, {g.bytes(pm)}});
  const uint32_t exp = rule("exp", {{}, {g.bytes(e), Grammar::ref(exp_sign), digit, Grammar::ref(digits_upto(2))}});
  return shared["number"] = rule("number", {{Grammar::ref(integer()), Grammar::ref(frac), Grammar::ref(exp)}});
}

// date, time, date-time (RFC 3339) and uuid, as strings.
uint32_t SchemaCompiler::Impl::format(const std::string& name, const std::string& path) {
  const std::string key = "format-" + name;
  if (auto it = shared.find(key); it != shared.end()) return it->second;
  const Element d = cls('0', '9');
  auto two = [&](char lo_tens, char hi_tens, char last_hi) {  // two digits up to hi_tens last_hi
    return rule("2digit", {{cls(uint8_t(lo_tens), uint8_t(hi_tens - 1)), d},
                           {cls(uint8_t(hi_tens), uint8_t(hi_tens)), cls('0', uint8_t(last_hi))}});
  };
  const uint32_t month = rule("month", {{cls('0', '0'), cls('1', '9')}, {cls('1', '1'), cls('0', '2')}});
  const uint32_t day = rule("day", {{cls('0', '0'), cls('1', '9')}, {cls('1', '2'), d}, {cls('3', '3'), cls('0', '1')}});
  std::vector<Element> date = {d, d, d, d, lit("-")[0], Grammar::ref(month), lit("-")[0], Grammar::ref(day)};
  const Element hour = Grammar::ref(two('0', '2', '3'));
  const Element sixty = Grammar::ref(rule("minute", {{cls('0', '5'), d}}));
  const uint32_t frac = rule("time-frac", {{}, {lit(".")[0], d, Grammar::ref(digits_upto(8))}});
  ByteClass pm;
  pm.add('+');
  pm.add('-');
  const uint32_t offset = rule("offset", {lit("Z"), {g.bytes(pm), hour, lit(":")[0], sixty}});
  std::vector<Element> time = {hour, lit(":")[0], sixty, lit(":")[0], sixty, Grammar::ref(frac), Grammar::ref(offset)};
  std::vector<Element> body;
  if (name == "date") {
    body = date;
  } else if (name == "time") {
    body = time;
  } else if (name == "date-time") {
    body = date;
    body.push_back(lit("T")[0]);
    body.insert(body.end(), time.begin(), time.end());
  } else if (name == "uuid") {
    ByteClass hex;
    hex.add_range('0', '9');
    hex.add_range('a', 'f');
    hex.add_range('A', 'F');
    for (int group : {8, 4, 4, 4, 12}) {
      if (!body.empty()) body.push_back(lit("-")[0]);
      for (int i = 0; i < group; ++i) body.push_back(g.bytes(hex));
    }
  } else {
    fail(ErrorKind::unsupported, path,
         fmt::format("'format': \"{}\" is not supported (supported: date, time, date-time, uuid)", name));
    return 0;
  }
  std::vector<Element> seq = lit("\"");
  seq.insert(seq.end(), body.begin(), body.end());
  seq.push_back(lit("\"")[0]);
  return shared[key] = rule(key, {seq});
}

// Any JSON value; objects and arrays nest (the matcher bounds the depth).
uint32_t SchemaCompiler::Impl::any_value() {
  if (auto it = shared.find("value"); it != shared.end()) return it->second;
  const uint32_t value = new_rule("value");
  shared["value"] = value;
  const Element w = Grammar::ref(ws()), v = Grammar::ref(value), comma = lit(",")[0];
  const uint32_t more_items = new_rule("more-items");
  g.add_alternative(more_items, {});
  g.add_alternative(more_items, {comma, w, v, w, Grammar::ref(more_items)});
  const uint32_t items = rule("items", {{}, {v, w, Grammar::ref(more_items)}});
  std::vector<Element> array = lit("[");
  array.insert(array.end(), {w, Grammar::ref(items), lit("]")[0]});
  for (const auto& alt : std::vector<std::vector<Element>>{
           {Grammar::ref(any_object())}, array, {Grammar::ref(string(0, -1))}, {Grammar::ref(number())},
           lit("true"), lit("false"), lit("null")})
    g.add_alternative(value, alt);
  return value;
}

uint32_t SchemaCompiler::Impl::any_object() {
  if (auto it = shared.find("object"); it != shared.end()) return it->second;
  const uint32_t object = new_rule("object");
  shared["object"] = object;
  const Element w = Grammar::ref(ws()), comma = lit(",")[0];
  const uint32_t member = rule("member", {{Grammar::ref(string(0, -1)), w, lit(":")[0], w, Grammar::ref(any_value())}});
  const uint32_t more = new_rule("more-members");
  g.add_alternative(more, {});
  g.add_alternative(more, {comma, w, Grammar::ref(member), w, Grammar::ref(more)});
  const uint32_t members = rule("members", {{}, {Grammar::ref(member), w, Grammar::ref(more)}});
  g.add_alternative(object, {lit("{")[0], w, Grammar::ref(members), lit("}")[0]});
  return object;
}

}  // namespace ember::grammar
