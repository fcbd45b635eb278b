// Where tests find the real model files.
//
// The directory is $EMBER_MODELS_DIR when set, else EMBER_SOURCE_DIR "/models" (a compile
// definition of every test target). model_path() returns "" when the file is missing and,
// when EMBER_REQUIRE_MODELS=1, also records a test failure. Use it through the macro:
//
//   TEST(Foo, Bar) {
//     EMBER_MODEL_OR_SKIP(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
//     ... path is a std::string naming an existing file ...
//   }
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace ember_test {

inline std::string models_dir() {
  const char* env = std::getenv("EMBER_MODELS_DIR");
  if (env != nullptr && env[0] != '\0') return env;
#ifdef EMBER_SOURCE_DIR
  return std::string(EMBER_SOURCE_DIR) + "/models";
#else
  return "models";
#endif
}

inline bool models_required() {
  const char* env = std::getenv("EMBER_REQUIRE_MODELS");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

// Full path of `file` in the models directory, or "" when it does not exist (a test failure
// is recorded first when EMBER_REQUIRE_MODELS=1).
inline std::string model_path(const char* file) {
  const std::string path = models_dir() + "/" + file;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path;
  if (models_required())
    ADD_FAILURE() << "model " << path << " is missing and EMBER_REQUIRE_MODELS=1 (set EMBER_MODELS_DIR "
                  << "or run scripts/fetch-models.sh)";
  return "";
}

}  // namespace ember_test

// Declares `var` as the model's path, or skips the test (fails it under EMBER_REQUIRE_MODELS=1).
#define EMBER_MODEL_OR_SKIP(var, file)                                                                \
  const std::string var = ::ember_test::model_path(file);                                             \
  if (var.empty())                                                                                    \
  GTEST_SKIP() << "model " << (file) << " not found in " << ::ember_test::models_dir()               \
               << " (set EMBER_MODELS_DIR; EMBER_REQUIRE_MODELS=1 turns this skip into a failure)"
