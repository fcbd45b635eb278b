// GGUF reader: valid files (every value type, versions, alignment, tensor layouts, real models).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "formats/gguf/gguf.h"
#include "unit/formats/gguf_builder.h"
#include "unit/formats/test_paths.h"

namespace ember::gguf {
namespace {

using ember_test::BuiltFile;
using ember_test::FileSpec;
using ember_test::GgufBuilder;
namespace vt = ember_test::vt;
namespace tt = ember_test::tt;

// Writes one pair of every value type, including an array of arrays of strings.
void write_every_type(GgufBuilder& b) {
  b.key("t.u8", vt::u8).u8(200);
  b.key("t.i8", vt::i8).i8(-100);
  b.key("t.u16", vt::u16).u16(60000);
  b.key("t.i16", vt::i16).i16(-30000);
  b.key("t.u32", vt::u32).u32(4000000000u);
  b.key("t.i32", vt::i32).i32(-2000000000);
  b.key("t.f32", vt::f32).f32(1.5f);
  b.key("t.bool", vt::boolean).u8(1);
  b.key("t.string", vt::string).str("hello, gguf");
  b.key("t.u64", vt::u64).u64(0xfedcba9876543210ull);
  b.key("t.i64", vt::i64).i64(-(int64_t(1) << 62));
  b.key("t.f64", vt::f64).f64(-0.25);
  b.key("t.array_i32", vt::array).array_header(vt::i32, 3).i32(1).i32(-2).i32(3);
  b.key("t.nested", vt::array).array_header(vt::array, 2);
  b.array_header(vt::string, 2).str("a").str("bc");
  b.array_header(vt::string, 0);
  b.key("t.empty_string", vt::string).str("");
}
constexpr uint64_t kEveryTypeCount = 15;

FileSpec every_type_spec(uint32_t version = 3) {
  FileSpec spec;
  spec.version = version;
  spec.n_kv = kEveryTypeCount;
  spec.kv = write_every_type;
  return spec;
}

Expected<File> parse(const BuiltFile& f) { return File::parse(f.bytes, "test.gguf"); }

class GgufVersions : public testing::TestWithParam<uint32_t> {};

TEST_P(GgufVersions, EveryValueTypeParses) {
  const BuiltFile built = ember_test::build_file(every_type_spec(GetParam()));
  auto f = parse(built);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), GetParam());
  EXPECT_EQ(f->metadata().size(), kEveryTypeCount);
  EXPECT_EQ(f->metadata().front().first, "t.u8");  // file order
  EXPECT_EQ(f->get_int("t.u8"), 200);
  EXPECT_EQ(f->get_int("t.i8"), -100);
  EXPECT_EQ(f->get_int("t.u16"), 60000);
  EXPECT_EQ(f->get_int("t.i16"), -30000);
  EXPECT_EQ(f->get_int("t.u32"), 4000000000ll);
  EXPECT_EQ(f->get_int("t.i32"), -2000000000);
  EXPECT_EQ(f->get_float("t.f32"), 1.5);
  EXPECT_EQ(f->get_bool("t.bool"), true);
  ASSERT_NE(f->get_string("t.string"), nullptr);
  EXPECT_EQ(*f->get_string("t.string"), "hello, gguf");
  EXPECT_EQ(f->get_int("t.u64"), std::nullopt);  // does not fit in int64
  EXPECT_EQ(std::get<uint64_t>(f->find("t.u64")->data), 0xfedcba9876543210ull);
  EXPECT_EQ(f->get_int("t.i64"), -(int64_t(1) << 62));
  EXPECT_EQ(f->get_float("t.f64"), -0.25);
  EXPECT_EQ(*f->get_string("t.empty_string"), "");
  const std::pair<const char*, std::string_view> stored_types[] = {
      {"t.u8", "u8"},   {"t.i8", "i8"},   {"t.u16", "u16"},     {"t.i16", "i16"},   {"t.u32", "u32"},
      {"t.i32", "i32"}, {"t.f32", "f32"}, {"t.bool", "bool"},   {"t.string", "string"},
      {"t.u64", "u64"}, {"t.i64", "i64"}, {"t.f64", "f64"},     {"t.nested", "array"}};
  for (const auto& [key, name] : stored_types) EXPECT_EQ(value_type_name(f->find(key)->type), name) << key;
}

TEST_P(GgufVersions, ArraysAndNestedArrays) {
  const BuiltFile built = ember_test::build_file(every_type_spec(GetParam()));
  auto f = parse(built);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const Array* a = f->get_array("t.array_i32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->elem_type, ValueType::i32);
  ASSERT_EQ(a->items.size(), 3u);
  EXPECT_EQ(a->items[1].as_int(), -2);
  EXPECT_EQ(a->items[1].type, ValueType::i32);
  const Array* nested = f->get_array("t.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->elem_type, ValueType::array);
  ASSERT_EQ(nested->items.size(), 2u);
  const Array* inner = nested->items[0].as_array();
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->elem_type, ValueType::string);
  ASSERT_EQ(inner->items.size(), 2u);
  EXPECT_EQ(*inner->items[1].as_string(), "bc");
  ASSERT_NE(nested->items[1].as_array(), nullptr);
  EXPECT_TRUE(nested->items[1].as_array()->items.empty());
}

INSTANTIATE_TEST_SUITE_P(V2AndV3, GgufVersions, testing::Values(2u, 3u));

TEST(Gguf, ValueAccessorsConvertOnlyWhereDocumented) {
  const BuiltFile built = ember_test::build_file(every_type_spec());
  auto f = parse(built);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->get_float("t.i32"), -2000000000.0);  // integers widen to float
  EXPECT_EQ(f->get_int("t.f32"), std::nullopt);     // floats do not narrow to int
  EXPECT_EQ(f->get_bool("t.u8"), std::nullopt);
  EXPECT_EQ(f->get_int("t.bool"), std::nullopt);
  EXPECT_EQ(f->get_string("t.u8"), nullptr);
  EXPECT_EQ(f->get_array("t.string"), nullptr);
  EXPECT_EQ(f->find("missing"), nullptr);
  EXPECT_EQ(f->get_int("missing"), std::nullopt);
  EXPECT_EQ(f->get_string("missing"), nullptr);
  EXPECT_EQ(f->find_tensor("missing"), nullptr);
  EXPECT_EQ(f->alignment(), 32u);
}

TEST(Gguf, TensorsOfSeveralTypes) {
  FileSpec spec;
  spec.n_kv = 1;
  spec.kv = [](GgufBuilder& b) { b.kv_string("general.architecture", "test"); };
  spec.tensors = {{"a.f32", {7, 3}, tt::F32},
                  {"b.q4_0", {64, 2}, tt::Q4_0},
                  {"c.q8_0", {32, 3, 2}, tt::Q8_0},
                  {"d.q4_k", {256, 2, 1, 2}, tt::Q4_K},
                  {"e.f16", {5}, tt::F16}};
  const BuiltFile built = ember_test::build_file(spec);
  auto f = parse(built);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->data_offset(), built.data_offset);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->file_size(), built.bytes.size());
  ASSERT_EQ(f->tensors().size(), spec.tensors.size());
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    SCOPED_TRACE(spec.tensors[i].name);
    const TensorInfo* t = f->find_tensor(spec.tensors[i].name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t, &f->tensors()[i]);
    EXPECT_EQ(uint32_t(t->type), spec.tensors[i].type);
    EXPECT_EQ(t->n_dims, int(spec.tensors[i].dims.size()));
    for (int d = 0; d < 4; ++d)
      EXPECT_EQ(t->ne[d], d < t->n_dims ? int64_t(spec.tensors[i].dims[d]) : 1);
    EXPECT_EQ(t->offset, built.offsets[i]);
    EXPECT_EQ(uint64_t(t->n_elements), built.n_elements[i]);
    EXPECT_EQ(t->n_bytes, built.sizes[i]);
    EXPECT_EQ(t->data, built.bytes.data() + built.data_offset + built.offsets[i]);  // zero copy
    EXPECT_EQ(t->data[0], ember_test::data_byte(i));
    EXPECT_EQ(t->data[t->n_bytes - 1], ember_test::data_byte(i));
  }
  EXPECT_EQ(f->tensors()[3].n_bytes, 2u * 2 * 144);  // Q4_K: 4 blocks of 144 bytes
}

TEST(Gguf, CustomAlignment) {
  FileSpec spec;
  spec.alignment = 64;
  spec.tensors = {{"x", {3}, tt::F32}, {"y", {32}, tt::Q8_0}, {"z", {1}, tt::F32}};
  const BuiltFile built = ember_test::build_file(spec);
  auto f = parse(built);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->data_offset(), built.data_offset);
  EXPECT_EQ(f->tensors()[1].offset, 64u);
  EXPECT_EQ(f->tensors()[2].offset, 128u);
  EXPECT_EQ(f->get_int("general.alignment"), 64);
}

TEST(Gguf, ExplicitDefaultAlignmentAndLargeAlignment) {
  for (uint64_t alignment : {32u, 1u, 4096u}) {
    SCOPED_TRACE(alignment);
    FileSpec spec;
    spec.alignment = alignment;
    spec.write_alignment = true;
    spec.tensors = {{"x", {3}, tt::F32}, {"y", {2}, tt::F32}};
    auto f = parse(ember_test::build_file(spec));
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->alignment(), alignment);
  }
}

TEST(Gguf, EmptyFileBodyParses) {
  auto f = parse(ember_test::build_file({}));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_TRUE(f->tensors().empty());
}

TEST(Gguf, VocabularyOnlyFileWithoutPaddingParses) {
  GgufBuilder b;
  b.header(3, 0, 1).kv_string("tokenizer.ggml.model", "gpt2");  // ends unpadded, as vocab-only files do
  ASSERT_NE(b.size() % 32, 0u);
  auto f = File::parse(b.span(), "vocab.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(*f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_LE(f->data_offset(), f->file_size());
}

TEST(Gguf, OpenKeepsTheMappingAliveInCopies) {
  FileSpec spec;
  spec.tensors = {{"w", {64}, tt::F32}};
  const BuiltFile built = ember_test::build_file(spec);
  const std::string path = testing::TempDir() + "ember_gguf_open_test.gguf";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(built.bytes.data()), std::streamsize(built.bytes.size()));
  }
  std::optional<File> copy;
  {
    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->name(), path);
    copy = *f;
  }
  std::filesystem::remove(path);
  const TensorInfo* t = copy->find_tensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->data[0], ember_test::data_byte(0));
  EXPECT_EQ(t->data[t->n_bytes - 1], ember_test::data_byte(0));
}

TEST(Gguf, OpenMissingFileIsNotFound) {
  auto f = File::open("/nonexistent/ember/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().kind(), ErrorKind::not_found);
  EXPECT_NE(f.status().message().find("/nonexistent/ember/model.gguf"), std::string::npos);
}

// Checks that hold for any valid file: tensors lie inside the data section and do not overlap.
void expect_consistent(const File& f) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    const auto traits = quant::type_traits(uint32_t(t.type));
    ASSERT_TRUE(traits.has_value());
    EXPECT_EQ(t.offset % f.alignment(), 0u);
    EXPECT_EQ(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3], t.n_elements);
    EXPECT_EQ(uint64_t(t.n_elements / traits->block_size * traits->block_bytes), t.n_bytes);
    EXPECT_LE(f.data_offset() + t.offset + t.n_bytes, f.file_size());
    ranges.emplace_back(t.offset, t.offset + t.n_bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
}

std::set<std::string> type_names(const File& f) {
  std::set<std::string> names;
  for (const TensorInfo& t : f.tensors()) names.emplace(quant::type_name(t.type));
  return names;
}

TEST(GgufModels, SmolLM2) {
  EMBER_MODEL_OR_SKIP(path, "SmolLM2-135M-Instruct.Q4_1.gguf");
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 272u);
  ASSERT_NE(f->get_string("general.architecture"), nullptr);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(type_names(*f), (std::set<std::string>{"F32", "Q4_1", "Q8_0"}));
  expect_consistent(*f);
  const Array* tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->elem_type, ValueType::string);
  EXPECT_EQ(int64_t(tokens->items.size()), f->get_int("llama.vocab_size"));
  const TensorInfo* embd = f->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->ne[0], 576);
  EXPECT_EQ(embd->ne[1], 49152);
  EXPECT_EQ(embd->n_bytes, 30081024u);
  EXPECT_EQ(f->data_offset() + embd->offset, 1785664u);
}

TEST(GgufModels, Gemma3) {
  EMBER_MODEL_OR_SKIP(path, "gemma-3-270m-q4_k_m.gguf");
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 236u);
  ASSERT_NE(f->get_string("general.architecture"), nullptr);
  EXPECT_EQ(*f->get_string("general.architecture"), "gemma3");
  EXPECT_EQ(type_names(*f), (std::set<std::string>{"F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"}));
  expect_consistent(*f);
  const Array* scores = f->get_array("tokenizer.ggml.scores");
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->elem_type, ValueType::f32);
  EXPECT_EQ(scores->items.size(), 262144u);
  const TensorInfo* norm = f->find_tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->n_dims, 1);
  EXPECT_EQ(norm->ne[0], 640);
  EXPECT_EQ(f->data_offset() + norm->offset, 6525120u);
}

}  // namespace
}  // namespace ember::gguf
