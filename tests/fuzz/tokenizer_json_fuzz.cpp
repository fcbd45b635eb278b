// libFuzzer target: arbitrary bytes as a tokenizer.json through Tokenizer::from_hf (the
// vocabulary, merges, added tokens, normalizer / pre-tokenizer / post-processor reading).
// An accepted tokenizer encodes and decodes a fixed string, with and without special
// tokens, and every id must be inside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "formats/hf/config.h"
#include "formats/hf/json_fields.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (256 << 10)) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = ember::hf::parse_json_text(text, "tokenizer.json");
  if (!doc.ok()) return 0;
  ember::hf::TokenizerSource source;
  source.path = "fuzz/tokenizer.json";
  source.json = std::move(*doc);
  source.config.bos_token = "<s>";
  source.config.eos_token = "</s>";
  auto tok = ember::tok::Tokenizer::from_hf(source);
  if (!tok.ok()) return 0;
  constexpr std::string_view kSample = "Hello <s> world </s> 123  \t\n caf\xc3\xa9 \xf0\x9f\x98\x80 \xff";
  for (bool special : {false, true}) {
    const auto ids = tok->encode(kSample, special, special);
    for (int32_t id : ids)
      if (id < 0 || id >= tok->n_vocab()) std::abort();
    (void)tok->decode(ids);
    (void)tok->decode(ids, true);
  }
  return 0;
}
