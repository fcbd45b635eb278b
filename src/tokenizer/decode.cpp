// Decoding, accessors and the streaming detokenizer.
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

const std::string kEmpty;

bool is_control_type(TokenType t) { return t == TokenType::control || t == TokenType::unknown; }

}  // namespace

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (!d_->valid_id(id)) return {};
  if (!render_special && is_control_type(d_->types[id])) return {};
  return d_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (!d_->valid_id(id)) continue;
    if (skip_special && is_control_type(d_->types[id])) continue;
    const std::string& piece = d_->pieces[id];
    // With add_space_prefix the encoder added a leading space; the decoder takes it back.
    if (first && d_->add_space_prefix && !is_control_type(d_->types[id]) && !piece.empty() && piece[0] == ' ') {
      out.append(piece, 1);
    } else {
      out += piece;
    }
    if (!is_control_type(d_->types[id])) first = false;
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return int32_t(d_->texts.size()); }
int32_t Tokenizer::bos_id() const { return d_->bos; }
int32_t Tokenizer::eos_id() const { return d_->eos; }
int32_t Tokenizer::unk_id() const { return d_->unk; }
int32_t Tokenizer::pad_id() const { return d_->pad; }
bool Tokenizer::add_bos() const { return d_->add_bos; }
bool Tokenizer::add_eos() const { return d_->add_eos; }
bool Tokenizer::add_space_prefix() const { return d_->add_space_prefix; }
bool Tokenizer::is_eog(int32_t id) const { return d_->valid_id(id) && d_->eog[id]; }
bool Tokenizer::is_control(int32_t id) const { return d_->valid_id(id) && is_control_type(d_->types[id]); }
TokenType Tokenizer::token_type(int32_t id) const {
  return d_->valid_id(id) ? d_->types[id] : TokenType::undefined;
}
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = d_->index.find(text);
  if (it == d_->index.end()) return std::nullopt;
  return it->second;
}
const std::string& Tokenizer::token_text(int32_t id) const {
  return d_->valid_id(id) ? d_->texts[id] : kEmpty;
}
std::string_view Tokenizer::model_name() const { return d_->model_name; }
std::string_view Tokenizer::pre_name() const { return d_->pre_name; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_control(id)) return {};
  std::string piece = tokenizer_.token_to_piece(id);
  if (first_ && tokenizer_.add_space_prefix() && !tokenizer_.is_control(id) && !piece.empty() && piece[0] == ' ')
    piece.erase(0, 1);
  if (!tokenizer_.is_control(id) && tokenizer_.n_vocab() > id && id >= 0) first_ = false;
  pending_ += piece;
  const size_t n = complete_utf8_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace ember::tok
