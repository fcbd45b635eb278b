#include "grammar/grammar.h"

#include <fmt/format.h>

#include <deque>

namespace ember::grammar {

uint32_t Grammar::add_rule(std::string name) {
  names_.push_back(std::move(name));
  alts_.emplace_back();
  return uint32_t(names_.size() - 1);
}

uint32_t Grammar::byte_class(const ByteClass& c) {
  auto [it, added] = class_ids_.try_emplace(c, uint32_t(classes_.size()));
  if (added) classes_.push_back(c);
  return it->second;
}

void Grammar::add_alternative(uint32_t rule, const std::vector<Element>& seq) {
  alts_[rule].push_back(uint32_t(elements_.size()));
  for (const Element& e : seq)
    if (e.kind != Element::Kind::end) elements_.push_back(e);
  elements_.push_back({});
}

namespace {

// Per-alternative facts for the fixpoints below: which rule it belongs to and its elements.
struct AltInfo {
  uint32_t rule;
  uint32_t start;
};

// Rules that derive some finite byte string (productive) or the empty string (nullable),
// by counting, per alternative, the elements not yet known to qualify.
std::vector<bool> fixpoint(const Grammar& g, const std::vector<AltInfo>& alts, bool bytes_qualify) {
  const size_t n_rules = g.n_rules();
  std::vector<bool> good(n_rules, false);
  std::vector<int> missing(alts.size(), 0);
  std::vector<std::vector<uint32_t>> users(n_rules);  // rule -> alternatives that use it
  std::deque<uint32_t> ready;
  for (uint32_t a = 0; a < alts.size(); ++a) {
    bool impossible = false;
    for (uint32_t p = alts[a].start; g.at(p).kind != Element::Kind::end; ++p) {
      const Element& e = g.at(p);
      if (e.kind == Element::Kind::bytes) {
        if (!bytes_qualify) impossible = true;
      } else {
        ++missing[a];
        users[e.value].push_back(a);
      }
    }
    if (impossible) missing[a] = -1;
    else if (missing[a] == 0) ready.push_back(alts[a].rule);
  }
  while (!ready.empty()) {
    const uint32_t r = ready.front();
    ready.pop_front();
    if (good[r]) continue;
    good[r] = true;
    for (uint32_t a : users[r])
      if (missing[a] > 0 && --missing[a] == 0) ready.push_back(alts[a].rule);
  }
  return good;
}

}  // namespace

Status Grammar::validate() const {
  if (names_.empty()) return make_error(ErrorKind::invalid_argument, "the grammar has no rules");
  std::vector<AltInfo> alts;
  for (uint32_t r = 0; r < alts_.size(); ++r) {
    if (alts_[r].empty()) return make_error(ErrorKind::invalid_argument, "grammar rule '{}' has no alternative", names_[r]);
    for (uint32_t start : alts_[r]) alts.push_back({r, start});
  }
  const std::vector<bool> nullable = fixpoint(*this, alts, false);
  // Left calls: A -> B when B can come first in A without a byte consumed before it.
  // A cycle among them would make the matcher expand forever.
  std::vector<std::vector<uint32_t>> calls(n_rules());
  for (const AltInfo& a : alts)
    for (uint32_t p = a.start; at(p).kind == Element::Kind::rule; ++p) {
      calls[a.rule].push_back(at(p).value);
      if (!nullable[at(p).value]) break;
    }
  std::vector<uint8_t> colour(n_rules(), 0);  // 0 new, 1 on the path, 2 done
  for (uint32_t start = 0; start < n_rules(); ++start) {
    if (colour[start]) continue;
    std::vector<std::pair<uint32_t, size_t>> path = {{start, 0}};
    colour[start] = 1;
    while (!path.empty()) {
      auto& [r, next] = path.back();
      if (next == calls[r].size()) {
        colour[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t callee = calls[r][next++];
      if (colour[callee] == 1)
        return make_error(ErrorKind::invalid_argument,
                          "the grammar loops without consuming input (rule '{}'; a $ref cycle without progress?)",
                          names_[callee]);
      if (colour[callee] == 0) {
        colour[callee] = 1;
        path.push_back({callee, 0});
      }
    }
  }
  const std::vector<bool> productive = fixpoint(*this, alts, true);
  if (!productive[root_])
    return make_error(ErrorKind::invalid_argument, "the schema allows no finite value (rule '{}')", names_[root_]);
  // A rule with no finite expansion is a dead end the matcher could walk into and never leave.
  for (uint32_t r = 0; r < n_rules(); ++r)
    if (!productive[r])
      return make_error(ErrorKind::invalid_argument, "a part of the schema allows no finite value (rule '{}')", names_[r]);
  return {};
}

namespace {

std::string class_text(const ByteClass& c) {
  auto one = [](int b) {
    if (b == '\\' || b == ']' || b == '-' || b == '^') return fmt::format("\\{}", char(b));
    if (b >= 0x20 && b < 0x7f) return std::string(1, char(b));
    return fmt::format("\\x{:02x}", b);
  };
  std::string out = "[";
  for (int b = 0; b < 256; ++b) {
    if (!c.has(uint8_t(b))) continue;
    int e = b;
    while (e + 1 < 256 && c.has(uint8_t(e + 1))) ++e;
    out += one(b);
    if (e > b + 1) out += '-';
    if (e > b) out += one(e);
    b = e;
  }
  return out + "]";
}

}  // namespace

std::string Grammar::to_text() const {
  std::string out;
  for (uint32_t r = 0; r < names_.size(); ++r) {
    out += names_[r] + " ::=";
    for (size_t i = 0; i < alts_[r].size(); ++i) {
      if (i > 0) out += " |";
      if (at(alts_[r][i]).kind == Element::Kind::end) out += " \"\"";
      for (uint32_t p = alts_[r][i]; at(p).kind != Element::Kind::end; ++p)
        out += " " + (at(p).kind == Element::Kind::rule ? names_[at(p).value] : class_text(classes_[at(p).value]));
    }
    out += "\n";
  }
  return out;
}

}  // namespace ember::grammar
