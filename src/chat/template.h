// A sandboxed Jinja2-subset engine for chat templates (docs/chat.md).
// Renders templates byte-for-byte like Python jinja2 configured as transformers'
// apply_chat_template does; hostile templates fail with a Status, never hang or crash.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ember::chat {

struct RenderLimits {
  std::int64_t max_loop_iterations = 1'000'000;  // all loops of one render together
  int max_depth = 64;                             // macro calls and nested blocks
  std::size_t max_output_bytes = 4u << 20;        // output and every intermediate string
  std::size_t max_items = 1'000'000;              // elements of one list built by the template
  std::size_t max_allocated_bytes = 256u << 20;   // text the template builds, summed over the render
  double max_seconds = 2.0;                       // wall time of one render
};

struct TemplateOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  RenderLimits limits;
  int max_expression_depth = 200;  // parser: nesting of expressions and blocks
  // What strftime_now() sees; unset means the local time at render.
  std::optional<std::tm> fixed_now;
};

struct Program;  // parsed template (ast.h)

class Template {
 public:
  // Syntax errors come back as ErrorKind::invalid_file with "line:col: message".
  static Expected<Template> parse(std::string_view source, TemplateOptions opts = {});
  // Render errors (raise_exception, limits, type errors) come back as invalid_argument.
  Expected<std::string> render(const nlohmann::ordered_json& context) const;

 private:
  std::shared_ptr<const Program> program_;
  TemplateOptions opts_;
};

}  // namespace ember::chat
