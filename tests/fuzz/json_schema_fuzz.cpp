// libFuzzer target: arbitrary bytes as a JSON schema. The input is "SCHEMA\n\nTEXT": the
// schema part is parsed and compiled (grammar/json_schema.h); when it compiles, the text
// part is fed to a Matcher byte by byte, then as one piece, and the two must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (64 << 10)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n\n");
  const std::string_view schema_text = input.substr(0, split);
  const std::string_view text = split == std::string_view::npos ? std::string_view() : input.substr(split + 2);
  const auto schema = ember::grammar::SchemaJson::parse(schema_text, nullptr, false);
  if (schema.is_discarded()) return 0;
  auto grammar = ember::grammar::compile_json_schema(schema);
  if (!grammar) return 0;
  ember::grammar::Matcher stepwise(*grammar), whole(*grammar);
  size_t accepted = 0;
  for (char c : text) {
    if (!stepwise.accept(std::string_view(&c, 1))) break;
    ++accepted;
  }
  const bool all = whole.can_accept(text);
  if (all != (accepted == text.size())) std::abort();  // the two ways disagree
  if (all && whole.accept(text) && whole.is_complete() != stepwise.is_complete()) std::abort();
  (void)grammar.value()->to_text().size();
  return 0;
}
