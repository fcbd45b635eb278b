// safetensors reader: valid files and one test per malformed case.
#include <gtest/gtest.h>

#include <cmath>

#include "formats/safetensors/safetensors.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

using ember_test::SafetensorsBuilder;
using ember_test::st_f32;
using ember_test::st_tensor;

Expected<safetensors::File> parse(const std::vector<uint8_t>& bytes) {
  return safetensors::File::parse(bytes, "test.safetensors");
}

// The parse fails with invalid_file and a message containing `needle` (and the file name).
void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  auto f = parse(bytes);
  ASSERT_FALSE(f.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(f.status().kind(), ErrorKind::invalid_file);
  EXPECT_NE(f.status().message().find(needle), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("test.safetensors"), std::string::npos) << f.status().message();
}

SafetensorsBuilder two_tensors() {
  SafetensorsBuilder b;
  b.tensors.push_back(st_f32("a", {2, 3}, {1, 2, 3, 4, 5, 6}));
  b.tensors.push_back(st_tensor("b.bias", "BF16", {4}));
  return b;
}

TEST(Safetensors, ValidFile) {
  SafetensorsBuilder b = two_tensors();
  b.metadata_json = R"({"format":"pt","note":"x"})";
  b.tensors.push_back(st_tensor("scalar", "I64", {}));
  b.tensors.push_back(st_tensor("empty", "F16", {0, 5}));
  const auto bytes = b.build();
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const auto* a = f->find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, safetensors::Dtype::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->n_elements, 6);
  EXPECT_EQ(a->n_bytes, 24u);
  float v[6];
  std::memcpy(v, a->data, 24);
  EXPECT_EQ(v[5], 6.0f);
  const auto* s = f->find_tensor("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->n_elements, 1);
  EXPECT_EQ(s->n_bytes, 8u);
  EXPECT_EQ(f->find_tensor("empty")->n_bytes, 0u);
  EXPECT_EQ(f->find_tensor("b.bias")->dtype, safetensors::Dtype::BF16);
  EXPECT_EQ(f->find_tensor("missing"), nullptr);
}

TEST(Safetensors, EveryKnownDtype) {
  SafetensorsBuilder b;
  for (const char* d : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32", "U32",
                        "F32", "I64", "U64", "F64"})
    b.tensors.push_back(st_tensor(std::string("t_") + d, d, {3}));
  const auto bytes = b.build();
  auto f = parse(bytes);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->find_tensor("t_F64")->n_bytes, 24u);
  EXPECT_EQ(f->find_tensor("t_F8_E4M3")->dtype, safetensors::Dtype::F8_E4M3);
}

TEST(Safetensors, TensorsInAnyHeaderOrder) {
  // Header order need not be offset order; the tiling check sorts by offset.
  std::string header = R"({"late":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                       R"("early":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  auto f = parse(SafetensorsBuilder::raw(header, {1, 2, 3, 4}));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->find_tensor("late")->data[0], 3);
}

TEST(SafetensorsMalformed, TooSmallForLength) { expect_error({1, 2, 3}, "too small"); }

TEST(SafetensorsMalformed, HeaderLengthOverCap) {
  expect_error(SafetensorsBuilder::with_length(safetensors::kMaxHeaderBytes + 1, "{}", {}), "exceeds the limit");
}

TEST(SafetensorsMalformed, HeaderLengthPastEnd) {
  expect_error(SafetensorsBuilder::with_length(1000, "{}", {}), "past the end of the file");
  expect_error(SafetensorsBuilder::with_length(~uint64_t(0), "{}", {}), "exceeds the limit");
}

TEST(SafetensorsMalformed, HeaderNotAnObject) {
  expect_error(SafetensorsBuilder::raw("[1, 2]", {}), "does not start with '{'");
  expect_error(SafetensorsBuilder::raw("", {}), "does not start with '{'");
}

TEST(SafetensorsMalformed, HeaderNotJson) { expect_error(SafetensorsBuilder::raw("{\"a\": ", {}), "not valid UTF-8 JSON"); }

TEST(SafetensorsMalformed, HeaderNotUtf8) {
  expect_error(SafetensorsBuilder::raw("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", {}),
               "not valid UTF-8 JSON");
}

TEST(SafetensorsMalformed, UnknownDtype) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("x", "F13", {2}));
  expect_error(b.build(), "unknown dtype 'F13'");
  b.tensors[0].dtype = "F4";
  expect_error(b.build(), "'F4' (sub-byte) is not supported");
}

TEST(SafetensorsMalformed, BadShape) {
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", {}),
               "shape entry -1");
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}})", {}),
               "shape entry 1.5");
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"U8","shape":"2","data_offsets":[0,2]}})", {0, 0}),
               "missing array field 'shape'");
}

TEST(SafetensorsMalformed, MissingFields) {
  expect_error(SafetensorsBuilder::raw(R"({"x":{"shape":[2],"data_offsets":[0,2]}})", {0, 0}), "'dtype'");
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"U8","shape":[2]}})", {0, 0}), "'data_offsets'");
  expect_error(SafetensorsBuilder::raw(R"({"x":[1,2]})", {}), "tensor 'x': entry is not an object");
}

TEST(SafetensorsMalformed, SizeDisagreesWithShape) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("x", "F32", {2, 3}));
  b.tensors[0].offsets_json = "[0,20]";
  b.trailing.assign(0, 0);
  expect_error(b.build(), "hold 20 bytes but dtype F32 x shape [2,3] needs 24");
}

TEST(SafetensorsMalformed, OffsetsNotAPair) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("x", "U8", {4}));
  b.tensors[0].offsets_json = "[4,0]";
  expect_error(b.build(), "0 <= begin <= end");
  b.tensors[0].offsets_json = "[0,4,8]";
  expect_error(b.build(), "is not [begin, end]");
  b.tensors[0].offsets_json = "[0,\"4\"]";
  expect_error(b.build(), "0 <= begin <= end");
}

TEST(SafetensorsMalformed, Gap) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("a", "U8", {4}));
  b.tensors.push_back(st_tensor("b", "U8", {4}));
  b.tensors[1].offsets_json = "[6,10]";
  b.trailing = {0, 0};
  expect_error(b.build(), "tensor 'b' starts at data offset 6 but the previous tensor ends at 4 (gap)");
}

TEST(SafetensorsMalformed, Overlap) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("a", "U8", {4}));
  b.tensors.push_back(st_tensor("b", "U8", {4}));
  b.tensors[1].offsets_json = "[2,6]";
  expect_error(b.build(), "(overlap)");
}

TEST(SafetensorsMalformed, TrailingBytes) {
  SafetensorsBuilder b = two_tensors();
  b.trailing = {1, 2, 3};
  expect_error(b.build(), "trailing bytes");
}

TEST(SafetensorsMalformed, PastEndOfData) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("a", "U8", {4}));
  b.tensors[0].data.resize(2);  // the header says 4 bytes, the file holds 2
  b.tensors[0].offsets_json = "[0,4]";
  expect_error(b.build(), "past the data region of 2 bytes");
}

TEST(SafetensorsMalformed, DuplicateName) {
  SafetensorsBuilder b;
  b.tensors.push_back(st_tensor("a", "U8", {2}));
  b.tensors.push_back(st_tensor("a", "U8", {2}));
  expect_error(b.build(), "tensor 'a' appears twice");
}

TEST(SafetensorsMalformed, ShapeOverflow) {
  expect_error(SafetensorsBuilder::raw(
                   R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", {}),
               "overflows the element count");
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                                       {}),
               "overflows");
  expect_error(SafetensorsBuilder::raw(R"({"x":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})",
                                       {}),
               "too large");
}

TEST(SafetensorsMalformed, BadMetadata) {
  SafetensorsBuilder b = two_tensors();
  b.metadata_json = R"({"n":1})";
  expect_error(b.build(), "__metadata__ 'n' is 1, not a string");
  b.metadata_json = "[]";
  expect_error(b.build(), "__metadata__ is not an object");
}

}  // namespace
}  // namespace ember
