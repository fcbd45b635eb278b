// libFuzzer target: arbitrary bytes as a .safetensors file (header length, JSON header,
// data region) through File::parse, and as a model.safetensors.index.json text through
// parse_index. Both must accept or return a Status; an accepted file's tensors must lie
// inside the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "formats/safetensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = ember::safetensors;
  const std::span<const std::uint8_t> bytes(data, size);
  auto file = st::File::parse(bytes, "fuzz.safetensors");
  if (file.ok()) {
    for (const auto& t : file->tensors()) {
      if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
      if (file->find_tensor(t.name) != &t) std::abort();
    }
  }
  (void)st::parse_index(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.index.json");
  return 0;
}
