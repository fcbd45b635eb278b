// Pre-tokenizers for byte-level BPE: hand-written equivalents of the split regexes the
// vocabularies were trained with (no regex library: std::regex has no \p{L}).
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::tok {

enum class PreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  gpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  llama3,
  // llama3 with \p{N} (single digits) instead of \p{N}{1,3}
  qwen2,
  // every \p{N} alone, then gpt2 on the stretches between (HF: Digits(individual) + ByteLevel)
  smollm,
};

// Maps tokenizer.ggml.pre to a pre-tokenizer; nullopt when unsupported.
std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name);

// Splits `text` into pieces, appended to `out` as [begin, end) byte offsets that cover the
// text in order. Invalid UTF-8 bytes are single characters of no class.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::pair<size_t, size_t>>& out);

}  // namespace ember::tok
