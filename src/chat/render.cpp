#include "chat/render.h"

#include <algorithm>

#include "chat/error.h"
#include "chat/pystr.h"

namespace ember::chat {

Value* Scope::find(std::string_view name) {
  for (auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  if (Value* v = find(name)) {
    *v = std::move(value);
  } else {
    vars.emplace_back(name, std::move(value));
  }
}

Renderer::Renderer(const TemplateOptions& opts, const Value& context) : opts_(opts), context_(context) {
  auto budget = std::chrono::duration<double>(opts.limits.max_seconds);
  deadline_ = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget);
}

std::string Renderer::render(const Program& program) {
  std::string out;
  Flow flow = exec(program.body, out);
  (void)flow;
  return out;
}

void Renderer::fail(const std::string& message) const { throw TemplateError(ErrorSource::render, message, line_); }

void Renderer::fail_limit(const std::string& message) const {
  throw TemplateError(ErrorSource::limit, message, line_);
}

void Renderer::fail_undefined(const Value& undefined) const {
  fail(undefined.undefined_hint().empty() ? "value is undefined" : undefined.undefined_hint());
}

void Renderer::check_string_size(std::size_t n) const {
  if (n > opts_.limits.max_output_bytes) {
    fail_limit("string of " + std::to_string(n) + " bytes exceeds the limit of " +
               std::to_string(opts_.limits.max_output_bytes) + " bytes");
  }
  allocated_bytes_ += n;
  if (allocated_bytes_ > opts_.limits.max_allocated_bytes) {
    fail_limit("the template built more than " + std::to_string(opts_.limits.max_allocated_bytes) +
               " bytes of text");
  }
}

std::string Renderer::str_of(const Value& v) const {
  if (v.is_string()) return v.str();
  std::string s = to_str(v, opts_.limits.max_output_bytes);
  check_string_size(s.size());
  return s;
}

void Renderer::check_items(std::size_t n) const {
  if (n > opts_.limits.max_items) {
    fail_limit("list of " + std::to_string(n) + " items exceeds the limit of " +
               std::to_string(opts_.limits.max_items) + " items");
  }
}

void Renderer::count_iterations(std::size_t n) {
  iterations_ += static_cast<std::int64_t>(n);
  if (iterations_ > opts_.limits.max_loop_iterations) {
    fail_limit("loop iterations exceed the limit of " + std::to_string(opts_.limits.max_loop_iterations));
  }
  tick();
}

void Renderer::tick() {
  if ((++ticks_ & 255) != 0) return;
  if (std::chrono::steady_clock::now() > deadline_) {
    fail_limit("rendering took longer than the limit of " + std::to_string(opts_.limits.max_seconds) + " s");
  }
}

void Renderer::append(std::string& out, std::string_view text) const {
  if (out.size() + text.size() > opts_.limits.max_output_bytes) {
    fail_limit("output exceeds the limit of " + std::to_string(opts_.limits.max_output_bytes) + " bytes");
  }
  out.append(text);
}

std::vector<Value> Renderer::iterate(const Value& v) const {
  switch (v.kind()) {
    case Kind::undefined: return {};
    case Kind::array: return v.array().items;
    case Kind::object: {
      std::vector<Value> keys;
      keys.reserve(v.object().entries.size());
      for (const auto& [k, _] : v.object().entries) keys.emplace_back(k);
      return keys;
    }
    case Kind::string: {
      check_items(v.str().size() / 4);
      std::vector<Value> chars;
      std::string s;
      for (char32_t c : pystr::decode(v.str())) {
        s.clear();
        pystr::append_utf8(s, c);
        chars.emplace_back(s);
      }
      return chars;
    }
    default: fail("'" + type_name(v) + "' object is not iterable");
  }
}

Flow Renderer::exec(const Body& body, std::string& out) {
  for (const auto& stmt : body) {
    Flow flow = exec_stmt(*stmt, out);
    if (flow != Flow::normal) return flow;
  }
  return Flow::normal;
}

Flow Renderer::exec_stmt(const Stmt& s, std::string& out) {
  line_ = s.line;
  tick();
  Flow flow = Flow::normal;
  switch (s.kind) {
    case StmtKind::text: append(out, s.text); break;
    case StmtKind::output: {
      Value v = eval(*s.expr);
      if (v.is_string()) {
        append(out, v.str());
      } else {
        append(out, str_of(v));
      }
      break;
    }
    case StmtKind::if_: exec_if(s, out, flow); break;
    case StmtKind::for_: return exec_for(s, out);
    case StmtKind::set: exec_set(s); break;
    case StmtKind::set_block: {
      std::string captured;
      exec(s.body, captured);
      assign(s.target, Value(std::move(captured)), *scope_);
      break;
    }
    case StmtKind::macro: scope_->set(s.name, make_macro(s)); break;
    case StmtKind::call_block: exec_call_block(s, out); break;
    case StmtKind::break_: return Flow::break_;
    case StmtKind::continue_: return Flow::continue_;
    case StmtKind::generation: return exec(s.body, out);
    case StmtKind::with: exec_with(s, out); break;
  }
  return flow;
}

void Renderer::exec_if(const Stmt& s, std::string& out, Flow& flow) {
  for (const auto& branch : s.branches) {
    if (truthy(eval(*branch.condition))) {
      flow = exec(branch.body, out);
      return;
    }
  }
  flow = exec(s.else_body, out);
}

// jinja2 evaluates the loop filter with the loop variables bound, before `loop` exists.
std::vector<Value> Renderer::filtered_items(const Stmt& s, std::vector<Value> items) {
  if (!s.filter) return items;
  std::vector<Value> kept;
  for (auto& item : items) {
    count_iterations(1);
    Scope probe{scope_};
    assign(s.target, item, probe);
    scope_ = &probe;
    bool keep = false;
    try {
      keep = truthy(eval(*s.filter));
    } catch (...) {
      scope_ = probe.parent;
      throw;
    }
    scope_ = probe.parent;
    if (keep) kept.push_back(std::move(item));
  }
  return kept;
}

Flow Renderer::exec_for(const Stmt& s, std::string& out) {
  Value iterable = eval(*s.expr);
  if (iterable.is_object() && s.target.names.size() > 1) {
    fail("cannot unpack dict keys; use .items()");
  }
  std::vector<Value> items = filtered_items(s, iterate(iterable));
  if (items.empty()) return exec(s.else_body, out);
  if (++block_depth_ > opts_.limits.max_depth) fail_limit("blocks nested too deeply");
  LoopState state{&items, 0};
  Scope* outer = scope_;
  try {
    for (std::size_t i = 0; i < items.size(); ++i) {
      count_iterations(1);
      Scope body_scope{outer};
      state.index = i;
      body_scope.loop = &state;
      assign(s.target, items[i], body_scope);
      scope_ = &body_scope;
      Flow flow = exec(s.body, out);
      scope_ = outer;
      if (flow == Flow::break_) break;
    }
  } catch (...) {
    scope_ = outer;
    --block_depth_;
    throw;
  }
  --block_depth_;
  return Flow::normal;
}

void Renderer::assign(const Target& target, Value value, Scope& scope) {
  if (target.names.size() == 1) {
    scope.set(target.names[0], std::move(value));
    return;
  }
  if (!value.is_array() && !value.is_string()) fail("cannot unpack non-iterable " + type_name(value) + " object");
  std::vector<Value> parts = iterate(value);
  if (parts.size() != target.names.size()) {
    fail(parts.size() > target.names.size()
             ? "too many values to unpack (expected " + std::to_string(target.names.size()) + ")"
             : "not enough values to unpack (expected " + std::to_string(target.names.size()) + ", got " +
                   std::to_string(parts.size()) + ")");
  }
  for (std::size_t i = 0; i < parts.size(); ++i) scope.set(target.names[i], std::move(parts[i]));
}

void Renderer::exec_set(const Stmt& s) {
  Value value = eval(*s.expr);
  if (s.target.attr.empty()) {
    assign(s.target, std::move(value), *scope_);
    return;
  }
  Value ns = lookup(s.target.names[0]);
  if (ns.kind() != Kind::ns) fail("can only assign attributes of a namespace, not of " + type_name(ns));
  const std::string& attr = s.target.attr;
  if (!attr.empty() && attr[0] == '_') fail("cannot store underscore-prefixed attribute '" + attr + "' on a namespace");
  if (value.holds_handle()) fail("a namespace attribute cannot hold a namespace or a function");
  if (value.depth() > 2 * opts_.limits.max_depth) fail_limit("value nested too deeply");
  ns.ns().attrs.set(attr, std::move(value));
}

void Renderer::exec_with(const Stmt& s, std::string& out) {
  Scope inner{scope_};
  for (const auto& p : s.params) inner.set(p.name, eval(*p.default_value));
  scope_ = &inner;
  try {
    exec(s.body, out);
  } catch (...) {
    scope_ = inner.parent;
    throw;
  }
  scope_ = inner.parent;
}

Value Renderer::make_macro(const Stmt& s) {
  auto callable = std::make_shared<Callable>();
  callable->name = s.name;
  const Stmt* stmt = &s;
  callable->call = [stmt](Renderer& r, CallArgs& args) { return r.run_macro(*stmt, args); };
  return Value(CallablePtr(std::move(callable)));
}

Value Renderer::run_macro(const Stmt& s, CallArgs& args) {
  count_iterations(1);  // calls share the loop budget: a call tree cannot fan out without bound
  if (++call_depth_ > opts_.limits.max_depth) {
    --call_depth_;
    fail_limit("macro calls nested deeper than " + std::to_string(opts_.limits.max_depth) + " (runaway recursion?)");
  }
  Scope macro_scope{&root_};
  std::size_t n_params = s.params.size();
  std::vector<Value> varargs;
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    if (i < n_params) {
      macro_scope.set(s.params[i].name, args.positional[i]);
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  Object kwargs;
  Value caller = Value::undefined("'caller' is undefined");
  for (auto& keyword : args.keyword) {
    const std::string& name = keyword.first;
    if (name == "caller") {
      caller = keyword.second;
      continue;
    }
    auto it = std::find_if(s.params.begin(), s.params.end(), [&](const MacroParam& p) { return p.name == name; });
    if (it == s.params.end()) {
      kwargs.set(name, keyword.second);
    } else {
      macro_scope.set(name, keyword.second);
    }
  }
  Scope* saved = scope_;
  int saved_line = line_;
  scope_ = &macro_scope;
  std::string out;
  try {
    for (const auto& p : s.params) {
      if (macro_scope.find(p.name)) continue;
      macro_scope.set(p.name, p.default_value ? eval(*p.default_value) : Value::undefined("'" + p.name + "' is undefined"));
    }
    macro_scope.set("varargs", Value::list(std::move(varargs)));
    macro_scope.set("kwargs", Value::dict(std::move(kwargs)));
    if (!caller.is_undefined()) macro_scope.set("caller", caller);
    exec(s.body, out);
  } catch (...) {
    scope_ = saved;
    --call_depth_;
    throw;
  }
  scope_ = saved;
  line_ = saved_line;
  --call_depth_;
  return Value(std::move(out));
}

void Renderer::exec_call_block(const Stmt& s, std::string& out) {
  const Expr& call_expr = *s.expr;
  Value callee = eval(*call_expr.object);
  CallArgs args;
  eval_args(call_expr, args);
  auto caller = std::make_shared<Callable>();
  caller->name = "caller";
  const Stmt* stmt = &s;
  Scope* defining_scope = scope_;
  caller->call = [stmt, defining_scope](Renderer& r, CallArgs& caller_args) {
    Scope* saved = r.scope_;
    Scope inner{defining_scope};
    for (std::size_t i = 0; i < stmt->params.size(); ++i) {
      const MacroParam& p = stmt->params[i];
      if (i < caller_args.positional.size()) {
        inner.set(p.name, caller_args.positional[i]);
      } else if (const Value* kw = caller_args.keyword_arg(p.name)) {
        inner.set(p.name, *kw);
      } else {
        r.scope_ = &inner;
        inner.set(p.name, p.default_value ? r.eval(*p.default_value) : Value::undefined());
      }
    }
    r.scope_ = &inner;
    std::string body;
    try {
      r.exec(stmt->body, body);
    } catch (...) {
      r.scope_ = saved;
      throw;
    }
    r.scope_ = saved;
    return Value(std::move(body));
  };
  args.keyword.emplace_back("caller", Value(CallablePtr(std::move(caller))));
  Value result = call(callee, args);
  append(out, str_of(result));
}

}  // namespace ember::chat
