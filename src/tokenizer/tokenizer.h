// Tokenizer built from GGUF metadata (tokenizer.ggml.*): SentencePiece-style ("llama",
// merges by score with byte fallback) and byte-level BPE ("gpt2", merges by rank after a
// hand-written pre-tokenizer). See docs/tokenizer.md.
//
// A Tokenizer is immutable once built; copies share the vocabulary and every method is
// safe to call from several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "formats/gguf/gguf.h"

namespace ember::hf {
struct TokenizerSource;
}

namespace ember::tok {

// tokenizer.ggml.token_type values.
enum class TokenType : uint8_t {
  undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6,
};

class Tokenizer {
 public:
  // Reads and validates tokenizer.ggml.*; errors name the key and the offending value.
  static Expected<Tokenizer> from_gguf(const gguf::File& file);
  // Builds the same tables from a Hugging Face tokenizer.json + tokenizer_config.json
  // (BPE: byte-level, or SentencePiece-style with byte_fallback). See docs/hf.md.
  static Expected<Tokenizer> from_hf(const hf::TokenizerSource& source);
  static Expected<Tokenizer> from_hf_dir(const std::string& dir);  // reads the files first

  // add_special: add BOS/EOS as the model's add_bos/add_eos say. parse_special: match the
  // text of control/user-defined tokens (e.g. "<|im_start|>", "<start_of_turn>") in `text`.
  // User-defined tokens are matched either way. Invalid UTF-8 never fails: bad bytes are
  // tokenized one at a time (as byte tokens where the vocabulary has them).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The bytes a token stands for. Control/unknown tokens give their text when render_special,
  // else "". Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool render_special = true) const;
  // Concatenated pieces; skip_special drops control/unknown tokens.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 when absent
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;
  // End of generation: eos, eot, eom and the usual end-of-turn tokens (<|im_end|>,
  // <end_of_turn>, <|endoftext|>, <|eot_id|>, ...) that the vocabulary marks as special.
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;  // control or unknown
  TokenType token_type(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;
  const std::string& token_text(int32_t id) const;  // as stored in the file ("" if out of range)
  std::string_view model_name() const;  // "llama" / "gpt2"
  std::string_view pre_name() const;    // tokenizer.ggml.pre ("default" when absent)

  struct Data;  // internal (tokenizer_impl.h)

 private:
  explicit Tokenizer(std::shared_ptr<const Data> data) : d_(std::move(data)) {}
  std::shared_ptr<const Data> d_;
};

// Incremental detokenizer: push() returns only complete UTF-8 and holds back a partial
// sequence (a multi-byte character split over byte-fallback tokens) until it completes.
// Bytes that can never become valid UTF-8 are passed through as decode() would, so the
// concatenation of every push() and flush() equals decode() of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  std::string flush();  // whatever is held back (possibly incomplete UTF-8)

 private:
  Tokenizer tokenizer_;  // a cheap copy: shares the vocabulary
  bool skip_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace ember::tok
