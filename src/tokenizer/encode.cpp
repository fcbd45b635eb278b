// Encoding: special-token partition, then SentencePiece-style or byte-level BPE merging.
#include <string>

#include "tokenizer/merge.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Appends `id`, or the byte tokens of `bytes` when id < 0, or unk when those are missing.
void emit_or_fallback(const Tokenizer::Data& d, int32_t id, std::string_view bytes, std::vector<int32_t>& out) {
  if (id >= 0) {
    out.push_back(id);
    return;
  }
  for (char ch : bytes) {
    const int32_t b = d.byte_tokens[static_cast<uint8_t>(ch)];
    if (b >= 0) out.push_back(b);
    else if (d.unk >= 0) out.push_back(d.unk);
  }
}

}  // namespace

void SpecialMatcher::add(std::string_view text, int32_t id) {
  int32_t node = 0;
  for (char ch : text) {
    const uint64_t key = (uint64_t(node) << 8) | static_cast<uint8_t>(ch);
    auto [it, inserted] = children_.try_emplace(key, n_nodes_);
    if (inserted) ++n_nodes_;
    node = it->second;
  }
  terminal_.try_emplace(node, id);  // the first id with this text wins
}

size_t SpecialMatcher::match(std::string_view text, size_t pos, const std::function<bool(int32_t)>& allowed,
                             int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto it = children_.find((uint64_t(node) << 8) | static_cast<uint8_t>(text[i]));
    if (it == children_.end()) break;
    node = it->second;
    const auto t = terminal_.find(node);
    if (t != terminal_.end() && allowed(t->second)) {
      best = i + 1 - pos;
      *id = t->second;
    }
  }
  return best;
}

void Tokenizer::Data::encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  std::string normalized;
  normalized.reserve(text.size() + 3);
  if (add_space_prefix && at_start && !(space_prefix_if_missing && text.starts_with(' '))) normalized += kSpaceMark;
  for (char ch : text) {
    if (ch == ' ') normalized += kSpaceMark;
    else normalized.push_back(ch);
  }
  std::vector<MergeSymbol> symbols;
  symbols.reserve(normalized.size());
  for (size_t pos = 0; pos < normalized.size();) {
    const uint32_t len = decode_utf8(normalized, pos).len;
    const auto it = spm_index.find(std::string_view(normalized).substr(pos, len));
    const int32_t id = it == spm_index.end() ? -1 : it->second;
    const int32_t n = int32_t(symbols.size());
    symbols.push_back({id, uint32_t(pos), uint32_t(pos + len), n - 1, n + 1});
    pos += len;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  const std::string_view view(normalized);
  merge_symbols(symbols, [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeCandidate> {
    if (l.id < 0 || r.id < 0) return std::nullopt;  // a character outside the vocabulary stays bytes
    const auto it = spm_index.find(view.substr(l.begin, r.end - l.begin));
    if (it == spm_index.end()) return std::nullopt;
    return MergeCandidate{-double(spm_priority[it->second]), it->second};
  });
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    emit_or_fallback(*this, symbols[i].id, view.substr(symbols[i].begin, symbols[i].end - symbols[i].begin), out);
}

void Tokenizer::Data::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    std::string mapped;
    for (char ch : word) append_utf8(mapped, gpt2_byte_to_code_point(static_cast<uint8_t>(ch)));
    if (const auto it = index.find(mapped); it != index.end() && types[it->second] == TokenType::normal) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<MergeSymbol> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    symbols[i] = {byte_tokens[static_cast<uint8_t>(word[i])], uint32_t(i), uint32_t(i + 1), int32_t(i) - 1,
                  int32_t(i) + 1};
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  merge_symbols(symbols, [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeCandidate> {
    if (l.id < 0 || r.id < 0) return std::nullopt;
    const auto it = bpe_merges.find((uint64_t(uint32_t(l.id)) << 32) | uint32_t(r.id));
    if (it == bpe_merges.end()) return std::nullopt;
    return MergeCandidate{double(it->second.rank), it->second.merged};
  });
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    if (symbols[i].id >= 0) out.push_back(symbols[i].id);
    else if (unk >= 0) out.push_back(unk);  // a byte the vocabulary cannot spell
  }
}

void Tokenizer::Data::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::pair<size_t, size_t>> words;
  pre_tokenize(pre, text, words);
  for (const auto& [begin, end] : words) encode_bpe_word(text.substr(begin, end - begin), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Data& d = *d_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && d.add_bos && d.bos >= 0) out.push_back(d.bos);
  const auto allowed = [&](int32_t id) {
    const TokenType t = d.types[id];
    return parse_special || (t != TokenType::control && t != TokenType::unknown);
  };
  const auto encode_text = [&](size_t begin, size_t end) {
    if (begin >= end) return;
    const std::string_view part = text.substr(begin, end - begin);
    if (d.kind == ModelKind::spm) d.encode_spm(part, begin == 0 || d.space_prefix_each_segment, out);
    else d.encode_bpe(part, out);
  };
  size_t start = 0;
  if (!d.specials.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      int32_t id = -1;
      const size_t len = d.specials.match(text, pos, allowed, &id);
      if (len == 0) {
        ++pos;
        continue;
      }
      encode_text(start, pos);
      out.push_back(id);
      pos += len;
      start = pos;
    }
  }
  encode_text(start, text.size());
  if (add_special && d.add_eos && d.eos >= 0) out.push_back(d.eos);
  return out;
}

}  // namespace ember::tok
