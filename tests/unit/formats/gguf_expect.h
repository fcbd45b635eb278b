// Shared assertion for the malformed-GGUF tests.
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf/gguf.h"

namespace ember_test {

// Parses `bytes` as "bad.gguf" and expects an invalid_file error whose message starts with the
// file name and contains every needle.
inline void expect_invalid(const std::vector<uint8_t>& bytes, std::initializer_list<std::string_view> needles) {
  auto f = ember::gguf::File::parse(bytes, "bad.gguf");
  ASSERT_FALSE(f.ok()) << "a malformed file parsed";
  EXPECT_EQ(f.status().kind(), ember::ErrorKind::invalid_file);
  const std::string msg = f.status().message();
  EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
  for (std::string_view needle : needles)
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' missing from: " << msg;
}

}  // namespace ember_test
