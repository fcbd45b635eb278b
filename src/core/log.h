// Minimal leveled logging to stderr.
#pragma once
#include <fmt/core.h>

#include <cstdio>

namespace ember {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };
LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  fmt::print(stderr, format, std::forward<Args>(args)...);
  std::fputc('\n', stderr);
}

}  // namespace ember
