// libFuzzer target: the streaming reasoning / tool-call output parser. The first byte
// picks the syntaxes (reasoning x tools x starts_in_reasoning), the second seeds the
// piece sizes; the rest is the model's output, fed in pieces of 1..16 bytes. The
// concatenated deltas and result() must equal parse_output() of the whole text
// (docs/chat.md); any difference aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chat/output_parser.h"

namespace {

using ember::chat::OutputFormat;
using ember::chat::ParsedOutput;

bool same(const ParsedOutput& a, const ParsedOutput& b) {
  return a.content == b.content && a.reasoning_content == b.reasoning_content && a.tool_calls == b.tool_calls;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > (16 << 10)) return 0;
  OutputFormat format;
  format.reasoning = static_cast<ember::chat::ReasoningSyntax>(data[0] % 3);
  format.tools = static_cast<ember::chat::ToolSyntax>((data[0] / 3) % 4);
  format.starts_in_reasoning = ((data[0] / 12) % 2) != 0;
  std::uint32_t rng = data[1] * 2654435761u + 1;
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  const ParsedOutput whole = ember::chat::parse_output(format, text);
  ember::chat::OutputParser parser(format);
  ParsedOutput streamed;
  for (size_t pos = 0; pos < text.size();) {
    rng = rng * 1664525u + 1013904223u;
    const size_t n = 1 + (rng >> 16) % 16;
    streamed.append(parser.push(text.substr(pos, n)));
    pos += n;
  }
  streamed.append(parser.finish());
  if (!same(streamed, whole) || !same(parser.result(), whole)) std::abort();
  return 0;
}
