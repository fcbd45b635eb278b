// GGUF reader: malformed tensor infos and data layouts.
#include <gtest/gtest.h>

#include <functional>

#include "formats/gguf/gguf.h"
#include "unit/formats/gguf_builder.h"
#include "unit/formats/gguf_expect.h"

namespace ember::gguf {
namespace {

using ember_test::expect_invalid;
using ember_test::GgufBuilder;
namespace tt = ember_test::tt;

// Header, tensor infos written by `infos`, padding to 32, then `data_bytes` bytes of data.
std::vector<uint8_t> tensor_file(uint64_t n_tensors, const std::function<void(GgufBuilder&)>& infos,
                                 size_t data_bytes) {
  GgufBuilder b;
  b.header(3, n_tensors, 0);
  infos(b);
  b.pad_to(32).zeros(data_bytes);
  return b.bytes;
}

TEST(GgufTensorMalformed, ValidBaseline) {
  auto f = File::parse(tensor_file(2, [](GgufBuilder& b) {
    b.tensor_info("a", {16}, tt::F32, 0).tensor_info("b", {8}, tt::F32, 64);
  }, 96), "ok.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
}

TEST(GgufTensorMalformed, NameLengthBeyondEnd) {
  GgufBuilder b;
  b.header(3, 1, 0).u64(5000).raw("blk.0", 5).zeros(40);
  expect_invalid(b.bytes, {"name of tensor #0", "length 5000"});
}

TEST(GgufTensorMalformed, EmptyName) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("", {4}, tt::F32, 0); }, 16),
                 {"tensor #0", "empty name"});
}

TEST(GgufTensorMalformed, DuplicateName) {
  expect_invalid(tensor_file(2, [](GgufBuilder& b) {
    b.tensor_info("blk.0.attn_q.weight", {4}, tt::F32, 0).tensor_info("blk.0.attn_q.weight", {4}, tt::F32, 32);
  }, 64), {"duplicate tensor name 'blk.0.attn_q.weight'"});
}

TEST(GgufTensorMalformed, NDimsZeroOrTooMany) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("scalar", {}, tt::F32, 0); }, 32),
                 {"'scalar'", "n_dims 0"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("five", {1, 1, 1, 1, 1}, tt::F32, 0); }, 32),
                 {"'five'", "n_dims 5"});
  GgufBuilder huge;
  huge.header(3, 1, 0).str("huge").u32(0xffffffffu).zeros(64);
  expect_invalid(huge.bytes, {"'huge'", "n_dims 4294967295"});
}

TEST(GgufTensorMalformed, DimensionNotPositive) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("zero", {4, 0}, tt::F32, 0); }, 32),
                 {"'zero'", "ne[1] = 0", "must be positive"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("neg", {uint64_t(1) << 63}, tt::F32, 0); }, 32),
                 {"'neg'", "ne[0] = -9223372036854775808"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("minus1", {2, 2, ~0ull}, tt::F32, 0); }, 32),
                 {"'minus1'", "ne[2] = -1"});
}

TEST(GgufTensorMalformed, UnknownType) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("w", {4}, 99, 0); }, 32),
                 {"'w'", "unknown tensor type id 99"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("w4", {4}, 4, 0); }, 32),  // removed Q4_2
                 {"'w4'", "unknown tensor type id 4"});
}

TEST(GgufTensorMalformed, ElementCountOverflow) {
  const uint64_t big = uint64_t(1) << 31;
  expect_invalid(tensor_file(1, [big](GgufBuilder& b) { b.tensor_info("huge", {big, big, 2}, tt::F32, 0); }, 32),
                 {"'huge'", "element count overflows"});
  const uint64_t max = ~0ull >> 1;
  expect_invalid(tensor_file(1, [max](GgufBuilder& b) { b.tensor_info("max", {max, max, max, max}, tt::F32, 0); }, 32),
                 {"'max'", "element count overflows"});
}

TEST(GgufTensorMalformed, ByteSizeOverflow) {
  const uint64_t big = uint64_t(1) << 31;
  expect_invalid(tensor_file(1, [big](GgufBuilder& b) { b.tensor_info("wide", {big, big}, tt::F32, 0); }, 32),
                 {"'wide'", "byte size overflows"});
  // 2^63 - 32 elements of Q8_0 fit in int64, but 2^58 - 1 blocks of 34 bytes do not.
  const uint64_t rows = (uint64_t(1) << 58) - 1;
  expect_invalid(tensor_file(1, [rows](GgufBuilder& b) { b.tensor_info("q", {32, rows}, tt::Q8_0, 0); }, 32),
                 {"'q'", "byte size overflows"});
}

TEST(GgufTensorMalformed, RowNotWholeBlocks) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("q4", {48, 2}, tt::Q4_0, 0); }, 64),
                 {"'q4'", "ne[0] = 48", "Q4_0 block size 32"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("qk", {128}, tt::Q4_K, 0); }, 160),
                 {"'qk'", "Q4_K block size 256"});
}

TEST(GgufTensorMalformed, OffsetNotAligned) {
  expect_invalid(tensor_file(2, [](GgufBuilder& b) {
    b.tensor_info("a", {4}, tt::F32, 0).tensor_info("b", {4}, tt::F32, 16);
  }, 64), {"'b'", "offset 16", "alignment 32"});
  GgufBuilder custom;  // a custom alignment applies to offsets too
  custom.header(3, 1, 1).kv_u32("general.alignment", 64).tensor_info("c", {4}, tt::F32, 32).pad_to(64).zeros(64);
  expect_invalid(custom.bytes, {"'c'", "offset 32", "alignment 64"});
}

TEST(GgufTensorMalformed, Overlap) {
  expect_invalid(tensor_file(2, [](GgufBuilder& b) {
    b.tensor_info("first", {16}, tt::F32, 0).tensor_info("second", {8}, tt::F32, 32);
  }, 96), {"overlaps", "'first'", "'second'"});
  expect_invalid(tensor_file(2, [](GgufBuilder& b) {  // same offset, listed out of order
    b.tensor_info("late", {8}, tt::F32, 64).tensor_info("early", {24}, tt::F32, 0);
  }, 96), {"overlaps", "'late'", "'early'"});
  expect_invalid(tensor_file(2, [](GgufBuilder& b) {
    b.tensor_info("x", {8}, tt::F32, 0).tensor_info("y", {8}, tt::F32, 0);
  }, 64), {"overlaps"});
}

TEST(GgufTensorMalformed, DataPastEndOfFile) {
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("w", {16}, tt::F32, 0); }, 63),
                 {"'w'", "past the end of the file"});
  expect_invalid(tensor_file(1, [](GgufBuilder& b) { b.tensor_info("far", {4}, tt::F32, uint64_t(1) << 40); }, 32),
                 {"'far'", "past the end of the file"});
  const uint64_t top = ~0ull & ~uint64_t(31);  // aligned, and offset + size would wrap
  expect_invalid(tensor_file(1, [top](GgufBuilder& b) { b.tensor_info("wrap", {64}, tt::F32, top); }, 32),
                 {"'wrap'", "past the end of the file"});
}

TEST(GgufTensorMalformed, MissingPaddingBeforeData) {
  GgufBuilder b;
  b.header(3, 1, 0).tensor_info("w", {1}, tt::F32, 0);  // no padding, no data
  expect_invalid(b.bytes, {"data section starts at"});
}

TEST(GgufTensorMalformed, TruncatedTensorInfo) {
  GgufBuilder b;
  b.header(3, 1, 0).tensor_info("w", {4, 4}, tt::F32, 0);
  const std::vector<uint8_t> full = b.bytes;
  b.bytes.resize(full.size() - 4);  // offset cut short
  auto f = File::parse(b.bytes, "t.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("'w'"), std::string::npos) << f.status().message();
}

}  // namespace
}  // namespace ember::gguf
