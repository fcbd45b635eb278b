// libFuzzer target: parse and render arbitrary template source against a small fixed
// context. Any crash, sanitizer report, hang or unbounded allocation is a bug; errors
// returned as Status are the expected outcome for most inputs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/template.h"

namespace {

const nlohmann::ordered_json& fuzz_context() {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi \u00e9 <think>x</think>"},
      {"role": "assistant", "content": "Hello", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [true, null, 2.5]}}}]},
      {"role": "tool", "content": [{"type": "text", "text": "ok"}, {"type": "image"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "n": 3
  })");
  return context;
}

ember::chat::TemplateOptions fuzz_options() {
  ember::chat::TemplateOptions opts;
  opts.limits.max_loop_iterations = 20000;
  opts.limits.max_output_bytes = 64 << 10;
  opts.limits.max_items = 20000;
  opts.limits.max_allocated_bytes = 8 << 20;
  opts.limits.max_seconds = 0.5;
  std::tm now{};
  now.tm_year = 124;
  now.tm_mday = 1;
  opts.fixed_now = now;
  return opts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (64 << 10)) return 0;
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = ember::chat::Template::parse(source, fuzz_options());
  if (!tmpl.ok()) return 0;
  auto out = tmpl->render(fuzz_context());
  (void)out;
  return 0;
}
