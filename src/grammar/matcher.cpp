#include "grammar/matcher.h"

#include <algorithm>

namespace ember::grammar {

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, MatcherLimits limits)
    : g_(std::move(grammar)), limits_(limits) {
  reset();
}

void Matcher::reset() {
  std::vector<Stack> start;
  // The root as a one-element "call": expand() treats a rule position on top as a call.
  // Positions on a stack are never Kind::end; the call is expanded directly here.
  for (uint32_t alt : g_->alternatives(g_->root())) {
    Stack s;
    if (g_->at(alt).kind != Element::Kind::end) s.push_back(alt);
    if (!expand(std::move(s), start)) break;
  }
  set_state(std::move(start));
}

bool Matcher::expand(Stack stack, std::vector<Stack>& out) const {
  std::vector<Stack> work;
  work.push_back(std::move(stack));
  size_t n_expanded = 0;
  while (!work.empty()) {
    Stack s = std::move(work.back());
    work.pop_back();
    if (s.empty() || g_->at(s.back()).kind == Element::Kind::bytes) {
      out.push_back(std::move(s));
      if (out.size() > limits_.max_stacks * 4) return false;
      continue;
    }
    if (++n_expanded > limits_.max_expansions || s.size() > limits_.max_depth) return false;
    const uint32_t pos = s.back();
    const uint32_t rule = g_->at(pos).value;
    s.pop_back();
    if (g_->at(pos + 1).kind != Element::Kind::end) s.push_back(pos + 1);  // what follows the call
    const auto& alts = g_->alternatives(rule);
    for (size_t i = 0; i < alts.size(); ++i) {
      Stack next = i + 1 == alts.size() ? std::move(s) : s;
      if (g_->at(alts[i]).kind != Element::Kind::end) next.push_back(alts[i]);
      work.push_back(std::move(next));
    }
  }
  return true;
}

bool Matcher::step(const std::vector<Stack>& from, uint8_t byte, std::vector<Stack>& to) const {
  to.clear();
  for (const Stack& s : from) {
    if (s.empty()) continue;
    const uint32_t pos = s.back();
    if (!g_->byte_class_at(g_->at(pos).value).has(byte)) continue;
    Stack next(s.begin(), s.end() - 1);
    if (g_->at(pos + 1).kind != Element::Kind::end) next.push_back(pos + 1);
    if (!expand(std::move(next), to)) return false;
  }
  if (to.empty()) return false;
  std::sort(to.begin(), to.end());
  to.erase(std::unique(to.begin(), to.end()), to.end());
  return to.size() <= limits_.max_stacks;
}

void Matcher::set_state(std::vector<Stack> stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  stacks_ = std::move(stacks);
  next_ = {};
  complete_ = false;
  for (const Stack& s : stacks_) {
    if (s.empty()) complete_ = true;
    else next_.add(g_->byte_class_at(g_->at(s.back()).value));
  }
}

bool Matcher::can_accept(std::string_view text) const {
  if (text.empty()) return true;
  if (!next_.has(uint8_t(text[0]))) return false;
  std::vector<Stack> a, b;
  if (!step(stacks_, uint8_t(text[0]), a)) return false;
  for (size_t i = 1; i < text.size(); ++i) {
    if (!step(a, uint8_t(text[i]), b)) return false;
    a.swap(b);
  }
  return true;
}

bool Matcher::accept(std::string_view text) {
  if (text.empty()) return true;
  if (!next_.has(uint8_t(text[0]))) return false;
  std::vector<Stack> a, b;
  if (!step(stacks_, uint8_t(text[0]), a)) return false;
  for (size_t i = 1; i < text.size(); ++i) {
    if (!step(a, uint8_t(text[i]), b)) return false;
    a.swap(b);
  }
  set_state(std::move(a));
  return true;
}

bool Matcher::is_complete() const { return complete_; }

bool Matcher::can_continue() const { return !next_.empty(); }

}  // namespace ember::grammar
