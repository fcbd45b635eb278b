// Internal state of a Tokenizer, shared by the loader, the encoders and the decoder.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace ember::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

enum class ModelKind { spm, bpe };

// Byte trie over the texts of control/user-defined/unknown tokens, for leftmost-longest
// matching in the input.
class SpecialMatcher {
 public:
  void add(std::string_view text, int32_t id);
  // Longest token starting at `pos` whose id passes `allowed`; returns its length (0 if none).
  size_t match(std::string_view text, size_t pos, const std::function<bool(int32_t)>& allowed,
               int32_t* id) const;
  bool empty() const { return n_nodes_ == 1; }

 private:
  std::unordered_map<uint64_t, int32_t> children_;  // (node << 8 | byte) -> child node
  std::unordered_map<int32_t, int32_t> terminal_;   // node -> token id
  int32_t n_nodes_ = 1;                             // node 0 is the root
};

struct BpeMerge {
  int32_t rank;
  int32_t merged;
};

struct Tokenizer::Data {
  ModelKind kind = ModelKind::spm;
  PreTokenizer pre = PreTokenizer::gpt2;
  std::string model_name;
  std::string pre_name;

  std::vector<std::string> texts;   // token text as stored
  std::vector<std::string> pieces;  // bytes each token decodes to
  std::vector<TokenType> types;
  TokenIndex index;                 // text -> id (first id wins on duplicates)

  // SentencePiece: the tokens merges may produce, spelled with U+2581 for spaces, and each
  // token's merge priority (higher merges first).
  TokenIndex spm_index;
  std::vector<float> spm_priority;
  bool merged_space_runs = false;  // Gemma: space-run tokens are pieces, not matched specials
  std::array<int32_t, 256> byte_tokens{};  // spm: <0xNN>; bpe: the one-char token of each byte

  // Byte-level BPE: (left id << 32 | right id) -> rank and result.
  std::unordered_map<uint64_t, BpeMerge> bpe_merges;
  bool ignore_merges = false;  // a whole pre-token that is in the vocabulary is used as is

  SpecialMatcher specials;
  std::vector<bool> eog;

  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  // The space prefix goes before every stretch of text between special tokens, not only
  // the first (Hugging Face's legacy Prepend("▁") normalizer runs on each stretch).
  bool space_prefix_each_segment = false;
  // The prefix is left out when the stretch already starts with a space (HF's Metaspace).
  bool space_prefix_if_missing = false;

  bool valid_id(int32_t id) const { return id >= 0 && id < static_cast<int32_t>(texts.size()); }
  void encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
};

// The GPT-2 byte <-> code point mapping (printable bytes map to themselves).
uint32_t gpt2_byte_to_code_point(uint8_t byte);
// -1 when `cp` is not in the image of the mapping.
int gpt2_code_point_to_byte(uint32_t cp);

}  // namespace ember::tok
