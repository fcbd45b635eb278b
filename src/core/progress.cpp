#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace ember {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(total > 0 ? total : 1), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done) {
  if (finished_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!shown_ && elapsed < 1.0) return;
  const int permille = int(1000 * (done > total_ ? total_ : done) / total_);
  if (permille == last_permille_) return;
  last_permille_ = permille;
  shown_ = true;
  const int width = 30, fill = permille * width / 1000;
  std::string bar(size_t(fill), '=');
  bar.resize(size_t(width), ' ');
  const char end = isatty(STDERR_FILENO) ? '\r' : '\n';
  if (end == '\n' && permille % 100 != 0) return;  // keep logs short when not a terminal
  std::fprintf(stderr, "%s [%s] %5.1f%% %6.1fs%c", label_.c_str(), bar.c_str(), permille / 10.0, elapsed, end);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (finished_) return;
  if (shown_) {
    update(total_);
    if (isatty(STDERR_FILENO)) std::fputc('\n', stderr);
  }
  finished_ = true;
}

}  // namespace ember
