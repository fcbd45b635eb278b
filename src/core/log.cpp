#include "core/log.h"

namespace ember {
namespace {
LogLevel g_level = LogLevel::info;
}
LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }
}  // namespace ember
