// Tree-walking renderer (internal). One Renderer renders one template once; it owns the
// scopes, the limit counters and the deadline. Errors are thrown as TemplateError and
// turned into a Status by Template::render.
#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "chat/ast.h"
#include "chat/template.h"
#include "chat/value.h"

namespace ember::chat {

struct LoopState {
  const std::vector<Value>* items;
  std::size_t index;
};

struct Scope {
  explicit Scope(Scope* parent_scope = nullptr) : parent(parent_scope) {}
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  const LoopState* loop = nullptr;  // set in a for-loop body: the `loop` variable
  Value* find(std::string_view name);
  void set(const std::string& name, Value value);
};

enum class Flow { normal, break_, continue_ };

class Renderer {
 public:
  Renderer(const TemplateOptions& opts, const Value& context);
  std::string render(const Program& program);

  // Used by filters, tests, methods and globals.
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_limit(const std::string& message) const;
  [[noreturn]] void fail_undefined(const Value& undefined) const;
  // Checks a string about to be built against the size limit and charges it to the
  // render's allocation budget.
  void check_string_size(std::size_t n) const;
  std::string str_of(const Value& v) const;  // str(v), bounded and charged
  void check_items(std::size_t n) const;
  void count_iterations(std::size_t n);
  void tick();
  std::vector<Value> iterate(const Value& v) const;
  Value call(const Value& callee, CallArgs& args);
  Value get_attr(const Value& object, const std::string& name) const;
  Value get_item(const Value& object, const Value& key) const;
  const TemplateOptions& options() const { return opts_; }

 private:
  const TemplateOptions& opts_;
  const Value& context_;
  Scope root_;
  Scope* scope_ = &root_;
  int line_ = 0;
  int call_depth_ = 0;
  int block_depth_ = 0;
  std::int64_t iterations_ = 0;
  mutable std::size_t allocated_bytes_ = 0;
  std::uint32_t ticks_ = 0;
  std::chrono::steady_clock::time_point deadline_;

  // Statements (render.cpp).
  Flow exec(const Body& body, std::string& out);
  Flow exec_stmt(const Stmt& s, std::string& out);
  void exec_if(const Stmt& s, std::string& out, Flow& flow);
  Flow exec_for(const Stmt& s, std::string& out);
  void exec_set(const Stmt& s);
  void exec_call_block(const Stmt& s, std::string& out);
  void exec_with(const Stmt& s, std::string& out);
  void assign(const Target& target, Value value, Scope& scope);
  void append(std::string& out, std::string_view text) const;
  Value make_macro(const Stmt& s);
  Value run_macro(const Stmt& s, CallArgs& args);
  std::vector<Value> filtered_items(const Stmt& s, std::vector<Value> items);

  // Expressions (eval.cpp).
 public:
  Value eval(const Expr& e);

 private:
  Value lookup(const std::string& name);
  Value eval_call(const Expr& e);
  void eval_args(const Expr& e, CallArgs& args);
  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_slice(const Expr& e);
  Value eval_filter(const Expr& e);
  Value eval_test(const Expr& e);
  Value arithmetic(Op op, const Value& a, const Value& b) const;
  Value repeat(const Value& seq, std::int64_t n) const;
  bool contains(const Value& container, const Value& item) const;
  Value global(const std::string& name) const;
};

Value loop_object(const LoopState& state);

// filters.cpp, tests.cpp, methods.cpp, globals.cpp
Value apply_filter(Renderer& r, const std::string& name, const Value& input, CallArgs& args);
bool has_filter(const std::string& name);
bool apply_test(Renderer& r, const std::string& name, const Value& input, CallArgs& args);
bool has_test(const std::string& name);
// Bound method obj.name, or an undefined Value when obj has no such method.
Value find_method(const Value& object, const std::string& name);
Value make_global(const std::string& name);

// Argument helpers shared by filters, methods and globals.
struct ArgReader {
  Renderer& r;
  CallArgs& args;
  std::string_view function;
  // Positional index or keyword name; nullptr when not given.
  const Value* get(std::size_t index, std::string_view name) const;
  std::string string_arg(std::size_t index, std::string_view name, std::string fallback) const;
  std::int64_t int_arg(std::size_t index, std::string_view name, std::int64_t fallback) const;
  bool bool_arg(std::size_t index, std::string_view name, bool fallback) const;
};

}  // namespace ember::chat
