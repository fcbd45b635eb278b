// libFuzzer target: arbitrary bytes as a Hugging Face config.json (read_config, the
// model-spec mapping, quantization_config), hf_quant_config.json (ModelOpt),
// generation_config.json and tokenizer_config.json. The config files are written once
// per input into a private temp directory, as the readers take a directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "formats/hf/config.h"
#include "formats/hf/json_fields.h"
#include "formats/hf/quant_config.h"
#include "model/archs/hf.h"

namespace {

const std::string& fuzz_dir() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() / ("ember-hf-config-fuzz-" + std::to_string(getpid()))).string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void write_file(const std::string& path, std::string_view text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), f) != text.size()) std::abort();
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (256 << 10)) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string& dir = fuzz_dir();
  write_file(dir + "/config.json", text);
  write_file(dir + "/hf_quant_config.json", text);
  if (auto config = ember::hf::read_config(dir); config.ok()) {
    (void)ember::model::spec_from_hf(*config);
    (void)ember::hf::read_quant_config(*config);
  }
  if (auto doc = ember::hf::parse_json_text(text, "fuzz.json"); doc.ok()) {
    (void)ember::hf::parse_generation_config(*doc, "generation_config.json");
    (void)ember::hf::parse_tokenizer_config(*doc, "tokenizer_config.json");
  }
  return 0;
}
