#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "core/half.h"
#include "core/mapped_file.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace ember {
namespace {

TEST(Half, Fp16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t v = uint16_t(h);
    if ((v & 0x7c00) == 0x7c00) continue;  // inf / nan
    EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(v)), v) << std::hex << h;
  }
}

TEST(Half, Fp16KnownValuesAndRounding) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);       // overflow to inf
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);       // max finite
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);         // tie -> even (zero)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3f818000)), 0x3f82);
}

TEST(Expected, CarriesValueOrError) {
  Expected<int> good = 3;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Expected<int> bad = make_error(ErrorKind::invalid_file, "x{}", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "x1");
  EXPECT_EQ(bad.status().kind(), ErrorKind::invalid_file);
}

TEST(MappedFile, MapsAndReportsMissing) {
  const std::string path = ::testing::TempDir() + "/ember_map_test.bin";
  { std::ofstream(path, std::ios::binary) << "hello"; }
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ(f->data()[4], 'o');
  auto missing = MappedFile::open(path + ".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().kind(), ErrorKind::not_found);
  std::remove(path.c_str());
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 3, 7, 100, 1001}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

}  // namespace
}  // namespace ember
