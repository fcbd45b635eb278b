// A small context-free grammar over bytes (docs/grammar.md): rules of alternatives, each
// alternative a sequence of byte classes and rule references. Repetition is spelled out
// as helper rules by whoever builds the grammar (json_schema.h). The Matcher (matcher.h)
// runs it.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember::grammar {

// A set of bytes.
struct ByteClass {
  std::array<uint64_t, 4> bits{};
  bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1u; }
  void add(uint8_t b) { bits[b >> 6] |= uint64_t(1) << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(uint8_t(b));
  }
  void add(const ByteClass& o) {
    for (size_t i = 0; i < 4; ++i) bits[i] |= o.bits[i];
  }
  bool empty() const { return (bits[0] | bits[1] | bits[2] | bits[3]) == 0; }
  auto operator<=>(const ByteClass&) const = default;
};

struct Element {
  enum class Kind : uint8_t { end, bytes, rule };
  Kind kind = Kind::end;
  uint32_t value = 0;  // bytes: class index; rule: rule index
};

// Limits a grammar must stay under; the JSON-schema compiler reports which was hit.
struct GrammarLimits {
  size_t max_rules = 200000;
  size_t max_elements = 2000000;
};

class Grammar {
 public:
  // Building.
  uint32_t add_rule(std::string name);  // a rule with no alternatives yet
  uint32_t byte_class(const ByteClass& c);
  Element bytes(const ByteClass& c) { return {Element::Kind::bytes, byte_class(c)}; }
  static Element ref(uint32_t rule) { return {Element::Kind::rule, rule}; }
  void add_alternative(uint32_t rule, const std::vector<Element>& seq);
  void set_root(uint32_t rule) { root_ = rule; }

  // Checks the grammar can be run: every rule has an alternative and no rule can reach
  // itself without consuming a byte (left recursion, e.g. a $ref cycle). Errors name the rule.
  Status validate() const;
  bool over(const GrammarLimits& l) const { return names_.size() > l.max_rules || elements_.size() > l.max_elements; }

  // Reading.
  uint32_t root() const { return root_; }
  size_t n_rules() const { return names_.size(); }
  size_t n_elements() const { return elements_.size(); }
  const Element& at(uint32_t pos) const { return elements_[pos]; }
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return alts_[rule]; }
  const ByteClass& byte_class_at(uint32_t i) const { return classes_[i]; }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  // GBNF-like text, one rule per line (for tests, debugging and docs).
  std::string to_text() const;

 private:
  std::vector<Element> elements_;            // every alternative, each ended by Kind::end
  std::vector<std::vector<uint32_t>> alts_;  // per rule: where its alternatives start
  std::vector<std::string> names_;
  std::vector<ByteClass> classes_;
  std::map<ByteClass, uint32_t> class_ids_;
  uint32_t root_ = 0;
};

}  // namespace ember::grammar
