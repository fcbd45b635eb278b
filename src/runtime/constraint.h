// Grammar-constrained output for one request (docs/grammar.md): which tokens the grammar
// lets come next, and when the output is complete. The sampler asks allows() for the
// token it drew and draws again without it when the answer is no (sampler.h).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace ember::runtime {

// Every token's bytes, built once per engine on first use (thread-safe).
class TokenBytes {
 public:
  // Control/unknown tokens get "" (they are not text; Constraint refuses them).
  const std::vector<std::string>& get(const tok::Tokenizer& tokenizer);

 private:
  std::once_flag once_;
  std::vector<std::string> bytes_;
};

class Constraint {
 public:
  // `bytes` from TokenBytes::get; `stop_token` says whether a token ends generation (EOS,
  // end of turn, a stop_token_id), which the grammar allows only when it is complete.
  Constraint(std::shared_ptr<const grammar::Grammar> grammar, const std::vector<std::string>& bytes,
             std::vector<bool> stop_tokens, std::vector<bool> control_tokens);

  bool allows(int32_t token) const;
  void accept(int32_t token);  // a token allows() said yes to
  // The output is a whole document and nothing may follow it: generation ends.
  bool done() const { return matcher_.is_complete() && !matcher_.can_continue(); }
  bool complete() const { return matcher_.is_complete(); }

 private:
  grammar::Matcher matcher_;
  const std::vector<std::string>& bytes_;
  std::vector<bool> stop_tokens_, control_tokens_;
};

}  // namespace ember::runtime
