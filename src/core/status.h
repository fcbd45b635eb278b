// Status and Expected<T>: how input, file and resource errors travel (DESIGN rule 11).
// Programmer errors use EMBER_CHECK (check.h) instead.
#pragma once
#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace ember {

enum class ErrorKind {
  invalid_argument,  // bad user input (CLI flag, request field)
  invalid_file,      // malformed model/tokenizer/template file
  not_found,         // missing file, key or tensor
  unsupported,       // well-formed but not supported by ember
  io,                // read/map failure
  out_of_memory,
  internal,
  overloaded,   // over capacity (a full request queue); retry later
  unavailable,  // not ready or shutting down
};

class Status {
 public:
  Status() = default;  // ok
  Status(ErrorKind kind, std::string message) : ok_(false), kind_(kind), message_(std::move(message)) {}
  static Status ok_status() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  ErrorKind kind_ = ErrorKind::internal;
  std::string message_;
};

template <typename... Args>
Status make_error(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  return Status(kind, fmt::format(format, std::forward<Args>(args)...));
}

// A value or an error Status. `if (!e) return e.status();`
template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Status error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

inline Status status_of(const Status& s) { return s; }
template <typename T>
Status status_of(const Expected<T>& e) { return e.status(); }

}  // namespace ember

// Propagate a failed Status or Expected<T> to a caller that returns Status or Expected<U>.
#define EMBER_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::ember::Status _st = ::ember::status_of(expr); \
    if (!_st.ok()) return _st;                      \
  } while (0)
