// Binary arithmetic with Python's rules: int/float promotion, floor division and modulo
// signs, string and list repetition (bounded before allocating).
#include <cmath>
#include <limits>

#include "chat/render.h"

namespace ember::chat {
namespace {

const char* op_symbol(Op op) {
  switch (op) {
    case Op::add: return "+";
    case Op::sub: return "-";
    case Op::mul: return "*";
    case Op::div: return "/";
    case Op::floordiv: return "//";
    case Op::mod: return "%";
    case Op::pow: return "**";
    default: return "?";
  }
}

double float_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((b < 0) != (m < 0))) m += b;
  return m;
}

// CPython's float_floor_div.
double float_floordiv(double a, double b) {
  double m = std::fmod(a, b);
  double div = (a - m) / b;
  if (m != 0 && ((b < 0) != (m < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1.0;
  return floored;
}

[[noreturn]] void unsupported_operands(const Renderer& r, Op op, const Value& a, const Value& b) {
  r.fail(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) + "' and '" +
         type_name(b) + "'");
}

}  // namespace

namespace {

Value int_arithmetic(const Renderer& r, Op op, const Value& a, const Value& b) {
  std::int64_t x = a.as_int(), y = b.as_int(), out = 0;
  switch (op) {
    case Op::add:
      if (__builtin_add_overflow(x, y, &out)) r.fail("integer overflow");
      return Value(out);
    case Op::sub:
      if (__builtin_sub_overflow(x, y, &out)) r.fail("integer overflow");
      return Value(out);
    case Op::mul:
      if (__builtin_mul_overflow(x, y, &out)) r.fail("integer overflow");
      return Value(out);
    case Op::floordiv:
    case Op::mod: {
      if (y == 0) r.fail("integer division or modulo by zero");
      if (x == std::numeric_limits<std::int64_t>::min() && y == -1) r.fail("integer overflow");
      std::int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q -= 1;
        m += y;
      }
      return Value(op == Op::floordiv ? q : m);
    }
    case Op::pow: {
      if (y < 0) {
        if (x == 0) r.fail("0.0 cannot be raised to a negative power");
        return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      std::int64_t result = 1, base = x;
      for (std::int64_t e = y; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) r.fail("integer overflow");
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) r.fail("integer overflow");
      }
      return Value(result);
    }
    case Op::div:
      if (y == 0) r.fail("division by zero");
      return Value(static_cast<double>(x) / static_cast<double>(y));
    default: unsupported_operands(r, op, a, b);
  }
}

Value float_arithmetic(const Renderer& r, Op op, const Value& a, const Value& b) {
  double x = a.as_double(), y = b.as_double();
  switch (op) {
    case Op::add: return Value(x + y);
    case Op::sub: return Value(x - y);
    case Op::mul: return Value(x * y);
    case Op::div:
      if (y == 0) r.fail("float division by zero");
      return Value(x / y);
    case Op::floordiv:
      if (y == 0) r.fail("float floor division by zero");
      return Value(float_floordiv(x, y));
    case Op::mod:
      if (y == 0) r.fail("float modulo");
      return Value(float_mod(x, y));
    case Op::pow:
      if (x == 0 && y < 0) r.fail("0.0 cannot be raised to a negative power");
      return Value(std::pow(x, y));
    default: unsupported_operands(r, op, a, b);
  }
}

}  // namespace

// seq * n for strings and lists; the size is checked before anything is allocated.
Value Renderer::repeat(const Value& seq, std::int64_t n) const {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    std::size_t len = seq.str().size();
    if (len > 0 && static_cast<std::uint64_t>(n) > opts_.limits.max_output_bytes / len + 1) {
      check_string_size(opts_.limits.max_output_bytes + 1);
    }
    check_string_size(len * static_cast<std::size_t>(n));
    std::string out;
    out.reserve(len * static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out += seq.str();
    return Value(std::move(out));
  }
  std::size_t len = seq.array().items.size();
  if (len > 0 && static_cast<std::uint64_t>(n) > opts_.limits.max_items / len + 1) check_items(opts_.limits.max_items + 1);
  check_items(len * static_cast<std::size_t>(n));
  std::vector<Value> items;
  items.reserve(len * static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.array().items.begin(), seq.array().items.end());
  return Value::list(std::move(items), seq.array().is_tuple);
}

Value Renderer::arithmetic(Op op, const Value& a, const Value& b) const {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    return (a.is_float() || b.is_float()) ? float_arithmetic(*this, op, a, b) : int_arithmetic(*this, op, a, b);
  }
  if (op == Op::add && a.is_string() && b.is_string()) {
    check_string_size(a.str().size() + b.str().size());
    return Value(a.str() + b.str());
  }
  if (op == Op::add && a.is_array() && b.is_array() && a.array().is_tuple == b.array().is_tuple) {
    check_items(a.array().items.size() + b.array().items.size());
    std::vector<Value> items = a.array().items;
    items.insert(items.end(), b.array().items.begin(), b.array().items.end());
    return Value::list(std::move(items), a.array().is_tuple);
  }
  if (op == Op::mul) {
    bool a_count = a.is_int() || a.is_bool(), b_count = b.is_int() || b.is_bool();
    if (a_count && (b.is_string() || b.is_array())) return repeat(b, a.as_int());
    if (b_count && (a.is_string() || a.is_array())) return repeat(a, b.as_int());
  }
  if (op == Op::mod && a.is_string()) fail("printf-style string formatting ('%') is not supported");
  unsupported_operands(*this, op, a, b);
}

}  // namespace ember::chat
