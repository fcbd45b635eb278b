// Recursive-descent parser for the jinja2 subset (internal). Follows jinja2's grammar and
// operator precedence; recursion and tree height are bounded by max_depth.
#pragma once
#include <initializer_list>
#include <memory>
#include <string_view>
#include <vector>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace ember::chat {

// Throws TemplateError(syntax).
std::unique_ptr<Program> parse_program(std::vector<Token> tokens, int max_depth);

class Parser {
 public:
  Parser(std::vector<Token> tokens, int max_depth) : tokens_(std::move(tokens)), max_depth_(max_depth) {}
  Body parse_template();

 private:
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int max_depth_;
  int depth_ = 0;
  int loop_depth_ = 0;

  struct DepthGuard {
    explicit DepthGuard(Parser& p);
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  // Token stream.
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(std::size_t ahead = 1) const;
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool at_op(std::string_view op) const;
  bool at_name(std::string_view name) const;
  bool skip_op(std::string_view op);
  bool skip_name(std::string_view name);
  void expect_op(std::string_view op);
  std::string expect_name();
  void expect_block_end();
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_at(const Token& t, const std::string& message) const;
  ExprPtr make(ExprKind kind, int line) const;
  ExprPtr seal(ExprPtr e) const;

  // Statements (parse_stmt.cpp).
  Body parse_body(std::initializer_list<std::string_view> ends, std::string& found_end);
  StmtPtr parse_statement();
  StmtPtr parse_if(int line);
  StmtPtr parse_for(int line);
  StmtPtr parse_set(int line);
  StmtPtr parse_macro(int line);
  StmtPtr parse_call_block(int line);
  StmtPtr parse_with(int line);
  StmtPtr parse_simple_block(StmtKind kind, std::string_view end, int line);
  Target parse_target(bool allow_attr);
  std::vector<MacroParam> parse_params();

  // Expressions (parse_expr.cpp).
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, std::string_view extra_end = {});
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_condexpr();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  ExprPtr parse_filter(ExprPtr node);
  ExprPtr parse_test(ExprPtr node);
  void parse_call_args(Expr& call);
  ExprPtr binary(Op op, ExprPtr left, ExprPtr right, int line) const;
};

}  // namespace ember::chat
