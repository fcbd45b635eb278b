// Runs a Grammar over bytes (docs/grammar.md). The state is a set of parse stacks; each
// stack lists the grammar positions still to match, the next one last. A byte advances
// every stack whose next position's class holds it; rule references are expanded at once,
// so every stack waits on a byte class or is empty (the text so far is complete).
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"

namespace ember::grammar {

struct MatcherLimits {
  size_t max_stacks = 1024;     // a byte that would need more parse stacks is rejected
  size_t max_depth = 1024;      // nesting deeper than this is rejected
  size_t max_expansions = 100000;  // rule expansions per byte
};

class Matcher {
 public:
  // `grammar` must have passed Grammar::validate().
  explicit Matcher(std::shared_ptr<const Grammar> grammar, MatcherLimits limits = {});

  // Advances over `text`; false (and the state unchanged) when some byte cannot come next.
  bool accept(std::string_view text);
  // Whether accept(text) would succeed, without changing the state.
  bool can_accept(std::string_view text) const;
  bool is_complete() const;   // the text so far is a whole sentence of the grammar
  bool can_continue() const;  // some byte may still follow
  ByteClass next_bytes() const { return next_; }  // the bytes that may come next
  void reset();

 private:
  using Stack = std::vector<uint32_t>;
  // Expands `stack` (rule references on top) into stacks that wait on bytes; false when
  // a limit is hit.
  bool expand(Stack stack, std::vector<Stack>& out) const;
  bool step(const std::vector<Stack>& from, uint8_t byte, std::vector<Stack>& to) const;
  void set_state(std::vector<Stack> stacks);

  std::shared_ptr<const Grammar> g_;
  MatcherLimits limits_;
  std::vector<Stack> stacks_;
  ByteClass next_;
  bool complete_ = false;
};

}  // namespace ember::grammar
