// Internal error type of the template engine. Thrown inside the parser and the renderer and
// caught in Template::parse / Template::render, which turn it into a Status: it never leaves
// the library.
#pragma once
#include <stdexcept>
#include <string>

namespace ember::chat {

enum class ErrorSource { syntax, render, raised, limit };

struct TemplateError : std::runtime_error {
  TemplateError(ErrorSource source, std::string message, int line = 0, int column = 0)
      : std::runtime_error(std::move(message)), source(source), line(line), column(column) {}
  ErrorSource source;
  int line;
  int column;
};

}  // namespace ember::chat
