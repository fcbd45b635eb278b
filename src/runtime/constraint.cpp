#include "runtime/constraint.h"

namespace ember::runtime {

const std::vector<std::string>& TokenBytes::get(const tok::Tokenizer& tokenizer) {
  std::call_once(once_, [&] {
    bytes_.resize(size_t(tokenizer.n_vocab()));
    for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) bytes_[size_t(id)] = tokenizer.token_to_piece(id, false);
  });
  return bytes_;
}

Constraint::Constraint(std::shared_ptr<const grammar::Grammar> grammar, const std::vector<std::string>& bytes,
                       std::vector<bool> stop_tokens, std::vector<bool> control_tokens)
    : matcher_(std::move(grammar)), bytes_(bytes), stop_tokens_(std::move(stop_tokens)),
      control_tokens_(std::move(control_tokens)) {}

bool Constraint::allows(int32_t token) const {
  const size_t t = size_t(token);
  if (t < stop_tokens_.size() && stop_tokens_[t]) return matcher_.is_complete();
  if (t >= bytes_.size() || (t < control_tokens_.size() && control_tokens_[t])) return false;
  const std::string& b = bytes_[t];
  return !b.empty() && matcher_.can_accept(b);
}

void Constraint::accept(int32_t token) {
  const size_t t = size_t(token);
  if (t < bytes_.size() && !(t < stop_tokens_.size() && stop_tokens_[t])) matcher_.accept(bytes_[t]);
}

}  // namespace ember::runtime
