// Statement grammar: text, {{ expr }}, and the {% %} tags of the supported subset.
#include <algorithm>

#include "chat/error.h"
#include "chat/parser.h"

namespace ember::chat {

std::unique_ptr<Program> parse_program(std::vector<Token> tokens, int max_depth) {
  auto program = std::make_unique<Program>();
  program->body = Parser(std::move(tokens), max_depth).parse_template();
  return program;
}

Body Parser::parse_template() {
  std::string found;
  return parse_body({}, found);
}

// Parses statements until a block tag whose name is in `ends`; consumes that name and
// leaves the rest of the tag to the caller.
Body Parser::parse_body(std::initializer_list<std::string_view> ends, std::string& found_end) {
  DepthGuard guard(*this);
  Body body;
  while (true) {
    const Token& t = current();
    if (t.type == Tok::eof) {
      if (ends.size() == 0) return body;
      std::string expected;
      for (auto e : ends) expected += (expected.empty() ? "'" : " or '") + std::string(e) + "'";
      fail("unexpected end of template, expected " + expected);
    }
    if (t.type == Tok::text) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::text;
      s->line = t.line;
      s->text = next().value;
      body.push_back(std::move(s));
      continue;
    }
    if (t.type == Tok::var_begin) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::output;
      s->line = next().line;
      s->expr = parse_tuple(true, false);
      if (current().type != Tok::var_end) fail("expected end of print statement, got '" + current().value + "'");
      next();
      body.push_back(std::move(s));
      continue;
    }
    if (t.type != Tok::block_begin) fail("unexpected token");
    const Token& name = peek();
    if (name.type == Tok::name && std::find(ends.begin(), ends.end(), name.value) != ends.end()) {
      next();
      found_end = next().value;
      return body;
    }
    body.push_back(parse_statement());
  }
}

StmtPtr Parser::parse_statement() {
  next();  // block_begin
  const Token& t = current();
  if (t.type != Tok::name) fail("tag name expected");
  std::string tag = t.value;
  int line = t.line;
  next();
  if (tag == "if") return parse_if(line);
  if (tag == "for") return parse_for(line);
  if (tag == "set") return parse_set(line);
  if (tag == "macro") return parse_macro(line);
  if (tag == "call") return parse_call_block(line);
  if (tag == "with") return parse_with(line);
  if (tag == "generation") return parse_simple_block(StmtKind::generation, "endgeneration", line);
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) fail_at(t, "'" + tag + "' outside of a loop");
    expect_block_end();
    auto s = std::make_unique<Stmt>();
    s->kind = tag == "break" ? StmtKind::break_ : StmtKind::continue_;
    s->line = line;
    return s;
  }
  static const char* kUnsupported[] = {"include", "extends", "import", "from", "block", "filter", "autoescape", "do"};
  for (const char* u : kUnsupported) {
    if (tag == u) fail_at(t, "the '" + tag + "' tag is not supported in chat templates");
  }
  fail_at(t, "Encountered unknown tag '" + tag + "'.");
}

StmtPtr Parser::parse_if(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::if_;
  s->line = line;
  ExprPtr condition = parse_tuple(false, false);
  while (true) {
    expect_block_end();
    std::string end;
    Body body = parse_body({"elif", "else", "endif"}, end);
    s->branches.push_back({std::move(condition), std::move(body)});
    if (end == "elif") {
      condition = parse_tuple(false, false);
      continue;
    }
    if (end == "else") {
      expect_block_end();
      s->else_body = parse_body({"endif"}, end);
    }
    expect_block_end();
    return s;
  }
}

Target Parser::parse_target(bool allow_attr) {
  Target target;
  bool parens = skip_op("(");
  target.names.push_back(expect_name());
  if (allow_attr && !parens && skip_op(".")) {
    target.attr = expect_name();
    return target;
  }
  while (skip_op(",")) {
    if (at_op(")") || at_op("=") || at_name("in")) break;
    target.names.push_back(expect_name());
  }
  if (parens) expect_op(")");
  return target;
}

StmtPtr Parser::parse_for(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::for_;
  s->line = line;
  s->target = parse_target(false);
  if (!skip_name("in")) fail("expected 'in' in for loop");
  s->expr = parse_tuple(false, false, "recursive");
  if (skip_name("if")) s->filter = parse_expression();
  if (at_name("recursive")) fail("recursive for loops are not supported");
  expect_block_end();
  std::string end;
  ++loop_depth_;
  s->body = parse_body({"else", "endfor"}, end);
  --loop_depth_;
  if (end == "else") {
    expect_block_end();
    s->else_body = parse_body({"endfor"}, end);
  }
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_set(int line) {
  auto s = std::make_unique<Stmt>();
  s->line = line;
  s->target = parse_target(true);
  if (skip_op("=")) {
    s->kind = StmtKind::set;
    s->expr = parse_tuple(true, false);
    expect_block_end();
    return s;
  }
  if (s->target.names.size() != 1) fail("expected '=' in set");
  s->kind = StmtKind::set_block;
  expect_block_end();
  std::string end;
  s->body = parse_body({"endset"}, end);
  expect_block_end();
  return s;
}

std::vector<MacroParam> Parser::parse_params() {
  std::vector<MacroParam> params;
  expect_op("(");
  while (!at_op(")")) {
    if (!params.empty()) expect_op(",");
    MacroParam p;
    p.name = expect_name();
    if (skip_op("=")) p.default_value = parse_expression();
    params.push_back(std::move(p));
  }
  expect_op(")");
  return params;
}

StmtPtr Parser::parse_macro(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::macro;
  s->line = line;
  s->name = expect_name();
  s->params = parse_params();
  expect_block_end();
  std::string end;
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_body({"endmacro"}, end);
  loop_depth_ = saved_loops;
  if (current().type == Tok::name) next();  // {% endmacro name %}
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_call_block(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::call_block;
  s->line = line;
  if (at_op("(")) s->params = parse_params();
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::call) fail("expected a call in call block");
  expect_block_end();
  std::string end;
  s->body = parse_body({"endcall"}, end);
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_with(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::with;
  s->line = line;
  while (current().type != Tok::block_end) {
    if (!s->params.empty()) expect_op(",");
    MacroParam p;
    p.name = expect_name();
    expect_op("=");
    p.default_value = parse_expression();
    s->params.push_back(std::move(p));
  }
  expect_block_end();
  std::string end;
  s->body = parse_body({"endwith"}, end);
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_simple_block(StmtKind kind, std::string_view end_tag, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  expect_block_end();
  std::string end;
  s->body = parse_body({end_tag}, end);
  expect_block_end();
  return s;
}

}  // namespace ember::chat
