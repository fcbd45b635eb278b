// libFuzzer target: arbitrary bytes as a GGUF file. The reader must reject or accept
// without crashing; an accepted file then goes through the model-spec mapping, the
// weight-shape checks and the tokenizer loader, which must do the same.
#include <cstddef>
#include <cstdint>
#include <span>

#include "formats/gguf/gguf.h"
#include "model/archs/arch.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto file = ember::gguf::File::parse(std::span<const std::uint8_t>(data, size), "fuzz.gguf");
  if (!file.ok()) return 0;
  if (auto spec = ember::model::spec_from_gguf(*file); spec.ok()) (void)ember::model::load_weights(*file, *spec);
  auto tok = ember::tok::Tokenizer::from_gguf(*file);
  if (tok.ok()) {
    const auto ids = tok->encode("Hello <s> world 123 \xf0\x9f\x98\x80", true, true);
    (void)tok->decode(ids);
  }
  return 0;
}
