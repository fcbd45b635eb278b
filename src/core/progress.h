// A progress bar on stderr for work that takes over a second. Silent until one second
// has passed and when stderr is not a terminal unless forced; always ends its line.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ember {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  void update(int64_t done);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_;
  bool shown_ = false;
  bool finished_ = false;
  int last_permille_ = -1;
};

}  // namespace ember
