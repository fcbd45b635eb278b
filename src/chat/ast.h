// Syntax tree of a parsed template. Nodes are plain structs with a kind tag; each node
// owns its children. Depth is bounded by the parser, so recursion over the tree is safe.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace ember::chat {

enum class ExprKind {
  literal,   // value
  name,      // name
  list,      // items
  tuple,     // items
  dict,      // items as key, value pairs
  attr,      // object.name
  item,      // object[index]
  slice,     // object[start:stop:step]; missing parts are null
  call,      // callee(args, kwargs)
  filter,    // object | name(args, kwargs)
  test,      // object is [not] name(args)
  unary,     // op operand
  binary,    // left op right
  compare,   // operand (ops[i] items[i])...
  logical,   // left and/or right
  condition  // then_expr if cond else else_expr (else_expr may be null)
};

enum class Op { add, sub, mul, div, floordiv, mod, pow, concat, neg, pos, not_, eq, ne, lt, le, gt, ge, in, not_in, and_, or_ };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct KeywordArg {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int depth = 1;                 // height of this subtree
  Value value;                   // literal
  std::string name;              // name, attr, filter, test
  Op op = Op::add;               // unary, binary, logical
  bool negated = false;          // test: `is not`
  ExprPtr object;                // attr/item/slice/call/filter/test target; unary/binary/logical left
  ExprPtr index;                 // item index; binary/logical right
  ExprPtr start, stop, step;     // slice parts; condition: cond, then, else
  std::vector<ExprPtr> items;    // list/tuple/dict (k, v, k, v...)/call args/compare operands
  std::vector<Op> ops;           // compare operators
  std::vector<KeywordArg> kwargs;
};

enum class StmtKind { text, output, if_, for_, set, set_block, macro, call_block, break_, continue_, generation, with };

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct IfBranch {
  ExprPtr condition;  // null for else
  Body body;
};

// Where `set` and `for` store values: names (tuple unpacking) or ns.attr.
struct Target {
  std::vector<std::string> names;
  std::string attr;  // set ns.attr = ...: names[0] is the namespace
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;               // text
  ExprPtr expr;                   // output; set value; for iterable; call_block call
  ExprPtr filter;                 // for ... if filter
  std::vector<IfBranch> branches;  // if
  Target target;                   // set, for
  Body body, else_body;            // for/macro/call/set_block/generation/with
  std::string name;                // macro
  std::vector<MacroParam> params;  // macro, call block (caller params), with (name = value)
};

struct Program {
  Body body;
};

}  // namespace ember::chat
