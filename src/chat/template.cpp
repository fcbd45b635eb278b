#include "chat/template.h"

#include <new>

#include "chat/error.h"
#include "chat/lexer.h"
#include "chat/parser.h"
#include "chat/render.h"

namespace ember::chat {

Expected<Template> Template::parse(std::string_view source, TemplateOptions opts) {
  try {
    std::vector<Token> tokens = tokenize(source, LexOptions{opts.trim_blocks, opts.lstrip_blocks});
    std::shared_ptr<const Program> program = parse_program(std::move(tokens), opts.max_expression_depth);
    Template t;
    t.program_ = std::move(program);
    t.opts_ = std::move(opts);
    return t;
  } catch (const TemplateError& e) {
    return make_error(ErrorKind::invalid_file, "chat template syntax error at {}:{}: {}", e.line, e.column, e.what());
  } catch (const std::bad_alloc&) {
    return make_error(ErrorKind::out_of_memory, "chat template too large to parse");
  }
}

Expected<std::string> Template::render(const nlohmann::ordered_json& context) const {
  if (!program_) return make_error(ErrorKind::internal, "render() on an empty chat template");
  try {
    Value root = from_json(context);
    Renderer renderer(opts_, root);
    return renderer.render(*program_);
  } catch (const TemplateError& e) {
    switch (e.source) {
      case ErrorSource::raised: return Status(ErrorKind::invalid_argument, e.what());
      case ErrorSource::limit:
        return make_error(ErrorKind::invalid_argument, "chat template exceeded a limit at line {}: {}", e.line,
                          e.what());
      default: return make_error(ErrorKind::invalid_argument, "chat template error at line {}: {}", e.line, e.what());
    }
  } catch (const std::bad_alloc&) {
    return make_error(ErrorKind::out_of_memory, "chat template ran out of memory");
  }
}

}  // namespace ember::chat
