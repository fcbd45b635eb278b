// libFuzzer target: arbitrary bytes as an OpenAI request body, as the server handles it:
// JSON parse, then parse_chat_request and parse_completion_request. An accepted chat
// request's messages/tools are rendered, as the chat endpoint does, through two real
// chat templates (Qwen3: tools + reasoning; Gemma 3: strict roles, content parts),
// loaded once from tests/fixtures/templates.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chat/conversation.h"
#include "server/schema.h"

namespace {

using ember::chat::ChatTemplate;

ember::chat::TemplateOptions fuzz_options() {
  ember::chat::TemplateOptions opts;
  opts.limits.max_loop_iterations = 20000;
  opts.limits.max_output_bytes = 256 << 10;
  opts.limits.max_items = 20000;
  opts.limits.max_allocated_bytes = 16 << 20;
  opts.limits.max_seconds = 0.5;
  return opts;
}

const std::vector<ChatTemplate>& templates() {
  static const std::vector<ChatTemplate> all = [] {
    std::vector<ChatTemplate> out;
    for (const char* name : {"qwen3.jinja", "gemma3.jinja"}) {
      std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/templates/" + name, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      auto t = ChatTemplate::create(text.str(), "<bos>", "<eos>", fuzz_options());
      if (!t.ok()) {
        std::fprintf(stderr, "openai_request_fuzz: cannot load template %s\n", name);
        std::abort();
      }
      out.push_back(std::move(*t));
    }
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (64 << 10)) return 0;
  const ember::server::Json body = ember::server::Json::parse(data, data + size, nullptr, false);
  if (body.is_discarded()) return 0;
  ember::server::RequestLimits limits;
  (void)ember::server::parse_completion_request(body, limits);
  auto chat = ember::server::parse_chat_request(body, limits);
  if (!chat.ok()) return 0;
  ember::chat::Conversation conv;
  conv.messages = chat.value.messages;
  if (chat.value.tool_choice != "none") conv.tools = chat.value.tools;
  conv.kwargs.update(chat.value.template_kwargs);
  for (const ChatTemplate& t : templates()) (void)t.render(conv);
  return 0;
}
