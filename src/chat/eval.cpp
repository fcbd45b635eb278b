// Expression evaluation with Python/jinja2 semantics.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "chat/error.h"
#include "chat/pystr.h"
#include "chat/render.h"

namespace ember::chat {

Value Renderer::eval(const Expr& e) {
  tick();
  switch (e.kind) {
    case ExprKind::literal: return e.value;
    case ExprKind::name: return lookup(e.name);
    case ExprKind::list:
    case ExprKind::tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& item : e.items) items.push_back(eval(*item));
      return Value::list(std::move(items), e.kind == ExprKind::tuple);
    }
    case ExprKind::dict: {
      Object o;
      for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i]);
        if (!key.is_string()) fail("dict keys must be strings in chat templates, got " + type_name(key));
        o.set(key.str(), eval(*e.items[i + 1]));
      }
      return Value::dict(std::move(o));
    }
    case ExprKind::attr: return get_attr(eval(*e.object), e.name);
    case ExprKind::item: {
      Value object = eval(*e.object);
      return get_item(object, eval(*e.index));
    }
    case ExprKind::slice: return eval_slice(e);
    case ExprKind::call: return eval_call(e);
    case ExprKind::filter: return eval_filter(e);
    case ExprKind::test: return eval_test(e);
    case ExprKind::unary: {
      Value v = eval(*e.object);
      if (e.op == Op::not_) return Value(!truthy(v));
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) fail("bad operand type for unary " + std::string(e.op == Op::neg ? "-" : "+") + ": '" + type_name(v) + "'");
      if (e.op == Op::pos) return v.is_bool() ? Value(v.as_int()) : v;
      if (v.is_float()) return Value(-v.as_double());
      if (v.as_int() == std::numeric_limits<std::int64_t>::min()) fail("integer overflow");
      return Value(-v.as_int());
    }
    case ExprKind::binary: return eval_binary(e);
    case ExprKind::compare: return eval_compare(e);
    case ExprKind::logical: {
      Value left = eval(*e.object);
      bool t = truthy(left);
      if (e.op == Op::and_ ? !t : t) return left;
      return eval(*e.index);
    }
    case ExprKind::condition: {
      if (truthy(eval(*e.start))) return eval(*e.stop);
      return e.step ? eval(*e.step) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  fail("unknown expression");
}

Value Renderer::lookup(const std::string& name) {
  for (Scope* s = scope_; s; s = s->parent) {
    if (s->loop && name == "loop") return loop_object(*s->loop);
    if (Value* v = s->find(name)) return *v;
  }
  if (context_.is_object()) {
    if (const Value* v = context_.object().find(name)) return *v;
  }
  Value g = make_global(name);
  if (!g.is_undefined()) return g;
  return Value::undefined("'" + name + "' is undefined");
}

void Renderer::eval_args(const Expr& e, CallArgs& args) {
  args.positional.reserve(e.items.size());
  for (const auto& a : e.items) args.positional.push_back(eval(*a));
  for (const auto& k : e.kwargs) args.keyword.emplace_back(k.name, eval(*k.value));
}

Value Renderer::eval_call(const Expr& e) {
  Value callee = eval(*e.object);
  CallArgs args;
  eval_args(e, args);
  int line = line_;
  Value result = call(callee, args);
  line_ = line;
  return result;
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  tick();
  if (callee.kind() == Kind::callable) return callee.callable().call(*this, args);
  if (callee.is_undefined()) fail_undefined(callee);
  fail(fmt::format("'{}' object is not callable", type_name(callee)));
}

Value Renderer::eval_filter(const Expr& e) {
  if (!has_filter(e.name)) fail("No filter named '" + e.name + "'.");
  Value input = eval(*e.object);
  CallArgs args;
  eval_args(e, args);
  return apply_filter(*this, e.name, input, args);
}

Value Renderer::eval_test(const Expr& e) {
  if (!has_test(e.name)) fail("No test named '" + e.name + "'.");
  Value input = eval(*e.object);
  CallArgs args;
  eval_args(e, args);
  bool result = apply_test(*this, e.name, input, args);
  return Value(e.negated ? !result : result);
}

Value Renderer::eval_slice(const Expr& e) {
  Value object = eval(*e.object);
  auto bound = [&](const ExprPtr& p) -> std::optional<std::int64_t> {
    if (!p) return std::nullopt;
    Value v = eval(*p);
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail("slice indices must be integers or None");
    return v.as_int();
  };
  std::optional<std::int64_t> start = bound(e.start), stop = bound(e.stop), step = bound(e.step);
  if (step && *step == 0) fail("slice step cannot be zero");
  std::int64_t st = step.value_or(1);
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_string()) return Value(pystr::slice(object.str(), start, stop, st));
  if (!object.is_array()) return Value::undefined(fmt::format("'{} object' is not subscriptable", type_name(object)));
  const auto& items = object.array().items;
  auto r = pystr::slice_range(static_cast<std::int64_t>(items.size()), start, stop, st);
  std::vector<Value> out;
  out.reserve(static_cast<std::size_t>(r.count));
  for (std::int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) out.push_back(items[static_cast<std::size_t>(i)]);
  return Value::list(std::move(out), object.array().is_tuple);
}

Value Renderer::eval_binary(const Expr& e) {
  Value left = eval(*e.object);
  Value right = eval(*e.index);
  if (e.op == Op::concat) {
    std::string s = str_of(left);
    std::string r = str_of(right);
    check_string_size(s.size() + r.size());
    return Value(s + r);
  }
  return arithmetic(e.op, left, right);
}

bool Renderer::contains(const Value& container, const Value& item) const {
  switch (container.kind()) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::array:
      for (const auto& v : container.array().items) {
        if (equal(v, item)) return true;
      }
      return false;
    case Kind::object: return item.is_string() && container.object().find(item.str()) != nullptr;
    default: fail("argument of type '" + type_name(container) + "' is not iterable");
  }
}

Value Renderer::eval_compare(const Expr& e) {
  Value left = eval(*e.object);
  for (std::size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.items[i]);
    bool result = false;
    Op op = e.ops[i];
    if (op == Op::eq || op == Op::ne) {
      result = equal(left, right) == (op == Op::eq);
    } else if (op == Op::in || op == Op::not_in) {
      result = contains(right, left) == (op == Op::in);
    } else {
      if (left.is_undefined()) fail_undefined(left);
      if (right.is_undefined()) fail_undefined(right);
      const Value& a = (op == Op::lt || op == Op::le) ? left : right;
      const Value& b = (op == Op::lt || op == Op::le) ? right : left;
      std::optional<bool> lt = less(a, b);
      if (!lt) {
        static const char* kNames[] = {"<", "<=", ">", ">="};
        int k = op == Op::lt ? 0 : op == Op::le ? 1 : op == Op::gt ? 2 : 3;
        fail(std::string("'") + kNames[k] + "' not supported between instances of '" + type_name(left) + "' and '" +
             type_name(right) + "'");
      }
      result = (op == Op::lt || op == Op::gt) ? *lt : (*lt || equal(a, b));
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace ember::chat
