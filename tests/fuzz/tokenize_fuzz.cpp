// libFuzzer target: arbitrary bytes as text for the real tokenizers (SmolLM2's
// byte-level BPE and Gemma 3's SentencePiece-style), loaded once from
// $EMBER_MODELS_DIR (default: models/). Encodes with and without special-token
// parsing, decodes, and streams the ids back through StreamDecoder.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Loaded {
  ember::gguf::File file;
  ember::tok::Tokenizer tok;
};

std::vector<std::unique_ptr<Loaded>>& tokenizers() {
  static std::vector<std::unique_ptr<Loaded>> all = [] {
    std::vector<std::unique_ptr<Loaded>> out;
    const char* env = std::getenv("EMBER_MODELS_DIR");
    const std::string dir = env != nullptr ? env : "models";
    for (const char* name : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
      auto f = ember::gguf::File::open(dir + "/" + name);
      if (!f.ok()) continue;
      auto t = ember::tok::Tokenizer::from_gguf(*f);
      if (t.ok()) out.push_back(std::make_unique<Loaded>(Loaded{std::move(*f), std::move(*t)}));
    }
    if (out.empty()) {
      std::fprintf(stderr, "tokenize_fuzz: no model found in %s (set EMBER_MODELS_DIR)\n", dir.c_str());
      std::abort();
    }
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& t : tokenizers()) {
    for (bool special : {false, true}) {
      const auto ids = t->tok.encode(text, special, special);
      for (int32_t id : ids)
        if (id < 0 || id >= t->tok.n_vocab()) std::abort();
      (void)t->tok.decode(ids);
      ember::tok::StreamDecoder stream(t->tok);
      for (int32_t id : ids) (void)stream.push(id);
      (void)stream.flush();
    }
  }
  return 0;
}
