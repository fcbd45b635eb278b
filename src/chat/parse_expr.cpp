// Expression grammar, following jinja2's parser (lowest precedence first):
// condexpr > or > and > not > compare > + - > ~ > * / // % > ** > unary - + > postfix, filter, test
#include <fmt/format.h>

#include <algorithm>

#include "chat/error.h"
#include "chat/parser.h"

namespace ember::chat {

Parser::DepthGuard::DepthGuard(Parser& p) : parser(p) {
  if (++parser.depth_ > parser.max_depth_) {
    parser.fail("template nested too deeply (more than " + std::to_string(parser.max_depth_) + " levels)");
  }
}

const Token& Parser::peek(std::size_t ahead) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }

bool Parser::at_op(std::string_view op) const { return current().type == Tok::op && current().value == op; }
bool Parser::at_name(std::string_view name) const { return current().type == Tok::name && current().value == name; }

bool Parser::skip_op(std::string_view op) {
  if (!at_op(op)) return false;
  next();
  return true;
}

bool Parser::skip_name(std::string_view name) {
  if (!at_name(name)) return false;
  next();
  return true;
}

namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::eof: return "end of template";
    case Tok::block_end: return "end of statement block";
    case Tok::var_end: return "end of print statement";
    case Tok::block_begin: return "begin of statement block";
    case Tok::var_begin: return "begin of print statement";
    case Tok::text: return "template data";
    case Tok::string: return "string";
    case Tok::integer: return "integer";
    case Tok::floating: return "float";
    default: return "'" + t.value + "'";
  }
}

}  // namespace

void Parser::expect_op(std::string_view op) {
  if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(current()));
}

std::string Parser::expect_name() {
  if (current().type != Tok::name) fail("expected a name, got " + describe(current()));
  return next().value;
}

void Parser::expect_block_end() {
  if (current().type != Tok::block_end) fail("expected end of statement block, got " + describe(current()));
  next();
}

void Parser::fail(const std::string& message) const { fail_at(current(), message); }

void Parser::fail_at(const Token& t, const std::string& message) const {
  throw TemplateError(ErrorSource::syntax, message, t.line, t.column);
}

ExprPtr Parser::make(ExprKind kind, int line) const {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

// Records the subtree height; left-leaning chains (a+b+c+...) grow without recursion in
// the parser, so the height is checked here to keep the evaluator's recursion bounded.
ExprPtr Parser::seal(ExprPtr e) const {
  int d = 0;
  auto take = [&d](const ExprPtr& child) {
    if (child) d = std::max(d, child->depth);
  };
  take(e->object);
  take(e->index);
  take(e->start);
  take(e->stop);
  take(e->step);
  for (const auto& c : e->items) take(c);
  for (const auto& k : e->kwargs) take(k.value);
  e->depth = d + 1;
  if (e->depth > max_depth_) {
    fail("expression nested too deeply (more than " + std::to_string(max_depth_) + " levels)");
  }
  return e;
}

ExprPtr Parser::binary(Op op, ExprPtr left, ExprPtr right, int line) const {
  auto e = make(op == Op::and_ || op == Op::or_ ? ExprKind::logical : ExprKind::binary, line);
  e->op = op;
  e->object = std::move(left);
  e->index = std::move(right);
  return seal(std::move(e));
}

ExprPtr Parser::parse_tuple(bool with_condexpr, bool explicit_parens, std::string_view extra_end) {
  int line = current().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  auto at_end = [&] {
    Tok t = current().type;
    return t == Tok::var_end || t == Tok::block_end || at_op(")") || (!extra_end.empty() && at_name(extra_end));
  };
  while (true) {
    if (!items.empty()) expect_op(",");
    if (at_end()) break;
    items.push_back(parse_expression(with_condexpr));
    if (!at_op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) fail("expected an expression, got " + describe(current()));
  }
  auto e = make(ExprKind::tuple, line);
  e->items = std::move(items);
  return seal(std::move(e));
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  int line = current().line;
  ExprPtr expr = parse_or();
  while (skip_name("if")) {
    auto e = make(ExprKind::condition, line);
    e->start = parse_or();
    e->stop = std::move(expr);
    if (skip_name("else")) {
      DepthGuard guard(*this);
      e->step = parse_condexpr();
    }
    expr = seal(std::move(e));
  }
  return expr;
}

ExprPtr Parser::parse_or() {
  int line = current().line;
  ExprPtr left = parse_and();
  while (skip_name("or")) left = binary(Op::or_, std::move(left), parse_and(), line);
  return left;
}

ExprPtr Parser::parse_and() {
  int line = current().line;
  ExprPtr left = parse_not();
  while (skip_name("and")) left = binary(Op::and_, std::move(left), parse_not(), line);
  return left;
}

ExprPtr Parser::parse_not() {
  if (at_name("not")) {
    int line = next().line;
    DepthGuard guard(*this);
    auto e = make(ExprKind::unary, line);
    e->op = Op::not_;
    e->object = parse_not();
    return seal(std::move(e));
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = current().line;
  ExprPtr first = parse_math1();
  auto e = make(ExprKind::compare, line);
  while (true) {
    static const std::pair<const char*, Op> kOps[] = {{"==", Op::eq}, {"!=", Op::ne}, {"<", Op::lt},
                                                      {"<=", Op::le}, {">", Op::gt},  {">=", Op::ge}};
    auto it = std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& p) { return at_op(p.first); });
    if (it != std::end(kOps)) {
      next();
      e->ops.push_back(it->second);
    } else if (skip_name("in")) {
      e->ops.push_back(Op::in);
    } else if (at_name("not") && peek().type == Tok::name && peek().value == "in") {
      next();
      next();
      e->ops.push_back(Op::not_in);
    } else {
      break;
    }
    e->items.push_back(parse_math1());
  }
  if (e->ops.empty()) return first;
  e->object = std::move(first);
  return seal(std::move(e));
}

ExprPtr Parser::parse_math1() {
  int line = current().line;
  ExprPtr left = parse_concat();
  while (at_op("+") || at_op("-")) {
    Op op = next().value == "+" ? Op::add : Op::sub;
    left = binary(op, std::move(left), parse_concat(), line);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  int line = current().line;
  ExprPtr left = parse_math2();
  while (skip_op("~")) left = binary(Op::concat, std::move(left), parse_math2(), line);
  return left;
}

ExprPtr Parser::parse_math2() {
  int line = current().line;
  ExprPtr left = parse_pow();
  while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
    const std::string& v = next().value;
    Op op = v == "*" ? Op::mul : v == "/" ? Op::div : v == "//" ? Op::floordiv : Op::mod;
    left = binary(op, std::move(left), parse_pow(), line);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  int line = current().line;
  ExprPtr left = parse_unary(true);
  while (skip_op("**")) left = binary(Op::pow, std::move(left), parse_unary(true), line);
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    int line = current().line;
    Op op = next().value == "-" ? Op::neg : Op::pos;
    DepthGuard guard(*this);
    node = make(ExprKind::unary, line);
    node->op = op;
    node->object = parse_unary(false);
    node = seal(std::move(node));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  const Token& t = current();
  int line = t.line;
  if (t.type == Tok::name) {
    const std::string& v = t.value;
    ExprPtr e = make(ExprKind::literal, line);
    if (v == "true" || v == "True") {
      e->value = Value(true);
    } else if (v == "false" || v == "False") {
      e->value = Value(false);
    } else if (v == "none" || v == "None") {
      e->value = Value();
    } else {
      e->kind = ExprKind::name;
      e->name = v;
    }
    next();
    return seal(std::move(e));
  }
  if (t.type == Tok::string) {
    std::string s;
    while (current().type == Tok::string) s += next().value;
    ExprPtr e = make(ExprKind::literal, line);
    e->value = Value(std::move(s));
    return seal(std::move(e));
  }
  if (t.type == Tok::integer || t.type == Tok::floating) {
    ExprPtr e = make(ExprKind::literal, line);
    e->value = t.type == Tok::integer ? Value(t.int_value) : Value(t.float_value);
    next();
    return seal(std::move(e));
  }
  DepthGuard guard(*this);
  if (skip_op("(")) {
    ExprPtr e = parse_tuple(true, true);
    expect_op(")");
    return e;
  }
  if (at_op("[")) return parse_list();
  if (at_op("{")) return parse_dict();
  fail("unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
  auto e = make(ExprKind::list, next().line);
  while (!at_op("]")) {
    if (!e->items.empty()) expect_op(",");
    if (at_op("]")) break;
    e->items.push_back(parse_expression());
  }
  expect_op("]");
  return seal(std::move(e));
}

ExprPtr Parser::parse_dict() {
  auto e = make(ExprKind::dict, next().line);
  while (!at_op("}")) {
    if (!e->items.empty()) expect_op(",");
    if (at_op("}")) break;
    e->items.push_back(parse_expression());
    expect_op(":");
    e->items.push_back(parse_expression());
  }
  expect_op("}");
  return seal(std::move(e));
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".") || at_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_op("(")) {
      auto call = make(ExprKind::call, current().line);
      call->object = std::move(node);
      parse_call_args(*call);
      node = seal(std::move(call));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (at_op("|")) {
      node = parse_filter(std::move(node));
    } else if (at_name("is")) {
      node = parse_test(std::move(node));
    } else if (at_op("(")) {
      auto call = make(ExprKind::call, current().line);
      call->object = std::move(node);
      parse_call_args(*call);
      node = seal(std::move(call));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& t = next();
  if (t.value == ".") {
    const Token& attr = current();
    if (attr.type == Tok::name) {
      auto e = make(ExprKind::attr, attr.line);
      e->object = std::move(node);
      e->name = next().value;
      return seal(std::move(e));
    }
    if (attr.type != Tok::integer) fail("expected name or number after '.', got " + describe(attr));
    auto e = make(ExprKind::item, attr.line);
    e->object = std::move(node);
    e->index = make(ExprKind::literal, attr.line);
    e->index->value = Value(next().int_value);
    return seal(std::move(e));
  }
  std::vector<ExprPtr> args;
  while (!at_op("]")) {
    if (!args.empty()) {
      expect_op(",");
      if (at_op("]")) break;
    }
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.empty()) fail("expected a subscript");
  ExprPtr index;
  if (args.size() == 1) {
    index = std::move(args[0]);
  } else {
    for (const auto& a : args) {
      if (a->kind == ExprKind::slice) fail("a slice inside a tuple subscript is not supported");
    }
    index = make(ExprKind::tuple, t.line);
    index->items = std::move(args);
    index = seal(std::move(index));
  }
  if (index->kind == ExprKind::slice) {
    index->object = std::move(node);
    return seal(std::move(index));
  }
  auto e = make(ExprKind::item, t.line);
  e->object = std::move(node);
  e->index = std::move(index);
  return seal(std::move(e));
}

ExprPtr Parser::parse_subscribed() {
  int line = current().line;
  ExprPtr start;
  if (!at_op(":")) {
    start = parse_expression();
    if (!at_op(":")) return start;
  }
  next();  // ':'
  auto e = make(ExprKind::slice, line);
  e->start = std::move(start);
  if (!at_op(":") && !at_op("]") && !at_op(",")) e->stop = parse_expression();
  if (skip_op(":")) {
    if (!at_op("]") && !at_op(",")) e->step = parse_expression();
  }
  return e;  // sealed by the caller once the object is attached
}

ExprPtr Parser::parse_filter(ExprPtr node) {
  while (skip_op("|")) {
    auto e = make(ExprKind::filter, current().line);
    e->name = expect_name();
    while (skip_op(".")) e->name += fmt::format(".{}", expect_name());
    e->object = std::move(node);
    if (at_op("(")) parse_call_args(*e);
    node = seal(std::move(e));
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  int line = next().line;  // 'is'
  auto e = make(ExprKind::test, line);
  e->negated = skip_name("not");
  e->name = expect_name();
  while (skip_op(".")) e->name += fmt::format(".{}", expect_name());
  e->object = std::move(node);
  const Token& t = current();
  bool starts_arg = t.type == Tok::name || t.type == Tok::string || t.type == Tok::integer ||
                    t.type == Tok::floating || at_op("[") || at_op("{");
  if (at_op("(")) {
    parse_call_args(*e);
  } else if (starts_arg && !at_name("else") && !at_name("or") && !at_name("and")) {
    if (at_name("is")) fail("You cannot chain multiple tests with is");
    e->items.push_back(parse_postfix(parse_primary()));
  }
  return seal(std::move(e));
}

void Parser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!at_op(")")) {
    if (!first) {
      expect_op(",");
      if (at_op(")")) break;
    }
    first = false;
    if (at_op("*") || at_op("**")) fail("*args and **kwargs in calls are not supported");
    if (current().type == Tok::name && peek().type == Tok::op && peek().value == "=") {
      std::string name = next().value;
      next();
      call.kwargs.push_back({name, parse_expression()});
    } else {
      if (!call.kwargs.empty()) fail("positional argument after keyword argument");
      call.items.push_back(parse_expression());
    }
  }
  expect_op(")");
}

}  // namespace ember::chat
