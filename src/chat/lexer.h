// Splits template source into text and tag tokens, applying jinja2's whitespace control
// (trim_blocks, lstrip_blocks, {%- -%}, {%+ +%}) the way jinja2's lexer does.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::chat {

enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };

struct Token {
  Tok type;
  std::string value;  // text, name, decoded string literal or operator
  int line = 1;
  int column = 1;
  std::int64_t int_value = 0;
  double float_value = 0;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws TemplateError(syntax) with the line and column of the problem.
std::vector<Token> tokenize(std::string_view source, const LexOptions& opts);

}  // namespace ember::chat
