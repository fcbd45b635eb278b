// GGUF reader: every malformed case is rejected with its own message; truncation and
// mutation sweeps never crash.
#include <gtest/gtest.h>

#include <functional>

#include "formats/gguf/gguf.h"
#include "unit/formats/gguf_builder.h"
#include "unit/formats/gguf_expect.h"

namespace ember::gguf {
namespace {

using ember_test::expect_invalid;
using ember_test::GgufBuilder;
namespace vt = ember_test::vt;
namespace tt = ember_test::tt;

// A file with one metadata pair written by `kv` and nothing else.
std::vector<uint8_t> kv_file(const std::function<void(GgufBuilder&)>& kv) {
  GgufBuilder b;
  b.header(3, 0, 1);
  kv(b);
  return b.bytes;
}

// --- header ---

TEST(GgufMalformed, BadMagic) {
  GgufBuilder b;
  b.raw("GGML", 4).u32(3).u64(0).u64(0);
  expect_invalid(b.bytes, {"bad magic", "47 47 4d 4c"});
}

TEST(GgufMalformed, EmptyAndTinyFiles) {
  expect_invalid({}, {"magic", "0 bytes"});
  expect_invalid({'G', 'G', 'U'}, {"magic"});
  expect_invalid({'G', 'G', 'U', 'F'}, {"truncated", "version"});
}

TEST(GgufMalformed, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    GgufBuilder b;
    b.header(v, 0, 0);
    expect_invalid(b.bytes, {"unsupported GGUF version " + std::to_string(v)});
  }
  GgufBuilder big_endian;
  big_endian.header(0x03000000u, 0, 0);
  expect_invalid(big_endian.bytes, {"version", "big-endian"});
}

TEST(GgufMalformed, CountsThatCannotFit) {
  GgufBuilder kv;
  kv.header(3, 0, 1000).zeros(100);
  expect_invalid(kv.bytes, {"metadata count 1000"});
  GgufBuilder huge_kv;
  huge_kv.header(3, 0, ~0ull);
  expect_invalid(huge_kv.bytes, {"metadata count 18446744073709551615"});
  GgufBuilder tensors;
  tensors.header(3, 1000, 0).zeros(100);
  expect_invalid(tensors.bytes, {"tensor count 1000"});
  GgufBuilder huge_tensors;
  huge_tensors.header(3, ~0ull, 0).zeros(64);
  expect_invalid(huge_tensors.bytes, {"tensor count"});
}

// --- metadata ---

TEST(GgufMalformed, KeyLengthBeyondEnd) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.u64(1000).raw("abc", 3).zeros(16); }),
                 {"key of metadata pair #0", "length 1000"});
  expect_invalid(kv_file([](GgufBuilder& b) { b.u64(~0ull).zeros(16); }), {"length 18446744073709551615"});
}

TEST(GgufMalformed, StringValueLengthBeyondEnd) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.key("general.name", vt::string).u64(1u << 30).raw("x", 1); }),
                 {"string value", "'general.name'", "length 1073741824"});
}

TEST(GgufMalformed, ArrayCountBeyondEnd) {
  expect_invalid(kv_file([](GgufBuilder& b) {
                   b.key("tokenizer.ggml.scores", vt::array).array_header(vt::f32, 1000).f32(0).f32(1);
                 }),
                 {"'tokenizer.ggml.scores'", "count 1000"});
  expect_invalid(kv_file([](GgufBuilder& b) { b.key("k", vt::array).array_header(vt::u8, uint64_t(1) << 40); }),
                 {"'k'", "count 1099511627776"});
}

TEST(GgufMalformed, StringInArrayBeyondEnd) {
  expect_invalid(kv_file([](GgufBuilder& b) {
                   b.key("tokenizer.ggml.tokens", vt::array).array_header(vt::string, 2).str("ok").u64(99).raw("ab", 2);
                 }),
                 {"'tokenizer.ggml.tokens'", "length 99"});
}

TEST(GgufMalformed, UnknownValueType) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.key("general.thing", 13).u32(0); }),
                 {"'general.thing'", "unknown value type 13"});
}

TEST(GgufMalformed, UnknownArrayElementType) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.key("general.list", vt::array).array_header(77, 1).u32(0); }),
                 {"'general.list'", "unknown array element type 77"});
}

TEST(GgufMalformed, UnknownNestedArrayElementType) {
  expect_invalid(kv_file([](GgufBuilder& b) {
                   b.key("general.nested", vt::array).array_header(vt::array, 2);
                   b.array_header(vt::u8, 1).u8(7);
                   b.array_header(0xdead, 1).u32(0);
                 }),
                 {"'general.nested'", "unknown nested array element type 57005"});
}

TEST(GgufMalformed, InvalidBool) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.key("tokenizer.ggml.add_bos_token", vt::boolean).u8(2); }),
                 {"'tokenizer.ggml.add_bos_token'", "invalid bool value 2"});
  expect_invalid(kv_file([](GgufBuilder& b) {
                   b.key("flags", vt::array).array_header(vt::boolean, 3).u8(0).u8(1).u8(0x80);
                 }),
                 {"'flags'", "invalid bool value 128"});
}

// Nested arrays: `levels` arrays, each holding the next, the innermost holding one u8.
std::vector<uint8_t> nested_file(int levels) {
  return kv_file([levels](GgufBuilder& b) {
    b.key("deep", vt::array);
    for (int i = 1; i < levels; ++i) b.array_header(vt::array, 1);
    b.array_header(vt::u8, 1).u8(42);
  });
}

TEST(GgufMalformed, ArrayNestingIsBounded) {
  auto ok = File::parse(nested_file(8), "deep.gguf");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  const Value* v = ok->find("deep");
  for (int i = 0; i < 8; ++i) {
    ASSERT_NE(v->as_array(), nullptr);
    v = &v->as_array()->items.at(0);
  }
  EXPECT_EQ(v->as_int(), 42);
  expect_invalid(nested_file(9), {"'deep'", "nested deeper than 8"});
  expect_invalid(nested_file(100000), {"'deep'", "nested deeper than 8"});
}

TEST(GgufMalformed, MetadataElementBudget) {
  // An outer array claims 84 arrays (fits the bytes left) and its first inner array claims the
  // 1000 bytes that really follow: more values than the file has bytes, refused before allocating.
  const auto bytes = kv_file([](GgufBuilder& b) {
    b.key("k", vt::array).array_header(vt::array, 84);
    b.array_header(vt::u8, 1000).fill(1000, 1);
  });
  expect_invalid(bytes, {"'k'", "budget"});
}

TEST(GgufMalformed, DuplicateKey) {
  GgufBuilder b;
  b.header(3, 0, 3).kv_u32("a", 1).kv_string("general.name", "x").kv_u32("general.name", 2);
  expect_invalid(b.bytes, {"duplicate metadata key 'general.name'"});
}

TEST(GgufMalformed, EmptyKey) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u32("", 1); }), {"metadata pair #0", "empty key"});
}

TEST(GgufMalformed, KeyNotUtf8) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u32("bad\xff\x01key", 1); }), {"UTF-8", "\\x01"});
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u32("\xc0\x80", 1); }), {"UTF-8"});        // overlong
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u32("\xed\xa0\x80", 1); }), {"UTF-8"});    // surrogate
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u32("ok\xe2\x82", 1); }), {"UTF-8"});      // cut short
  auto good = File::parse(kv_file([](GgufBuilder& b) { b.kv_u32("caf\xc3\xa9.\xf0\x9f\x98\x80", 1); }), "u.gguf");
  EXPECT_TRUE(good.ok()) << good.status().message();
}

TEST(GgufMalformed, AlignmentNotPowerOfTwo) {
  for (uint32_t a : {0u, 3u, 48u, 0xffffffffu}) {
    expect_invalid(kv_file([a](GgufBuilder& b) { b.kv_u32("general.alignment", a); }),
                   {"'general.alignment'", "alignment " + std::to_string(a) + " is not a power of two"});
  }
}

TEST(GgufMalformed, AlignmentNotU32) {
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_u64("general.alignment", 32); }),
                 {"'general.alignment'", "must be a u32, not u64"});
  expect_invalid(kv_file([](GgufBuilder& b) { b.kv_i32("general.alignment", 32); }),
                 {"'general.alignment'", "must be a u32, not i32"});
}

}  // namespace
}  // namespace ember::gguf
