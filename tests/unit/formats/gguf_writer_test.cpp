// GGUF writer: write with gguf::Writer, read back with gguf::File (every value type,
// nested arrays, alignments, tensor offsets and bytes), and the writer's own checks.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>

#include "formats/gguf/gguf.h"
#include "formats/gguf/writer.h"

namespace ember::gguf {
namespace {

using quant::Type;

std::string temp_path(const std::string& tag) {
  return (std::filesystem::temp_directory_path() /
          ("ember_writer_" + tag + "_" + std::to_string(::getpid()) + ".gguf")).string();
}

void add_every_type(Writer& w) {
  ASSERT_TRUE(w.add("t.u8", val::u8(200)).ok());
  ASSERT_TRUE(w.add("t.i8", val::i8(-100)).ok());
  ASSERT_TRUE(w.add("t.u16", val::u16(60000)).ok());
  ASSERT_TRUE(w.add("t.i16", val::i16(-30000)).ok());
  ASSERT_TRUE(w.add("t.u32", val::u32(4000000000u)).ok());
  ASSERT_TRUE(w.add("t.i32", val::i32(-2000000000)).ok());
  ASSERT_TRUE(w.add("t.f32", val::f32(1.5f)).ok());
  ASSERT_TRUE(w.add("t.bool", val::boolean(true)).ok());
  ASSERT_TRUE(w.add("t.string", val::string("hello, gguf")).ok());
  ASSERT_TRUE(w.add("t.u64", val::u64(0xfedcba9876543210ull)).ok());
  ASSERT_TRUE(w.add("t.i64", val::i64(-(int64_t(1) << 62))).ok());
  ASSERT_TRUE(w.add("t.f64", val::f64(-0.25)).ok());
  ASSERT_TRUE(w.add("t.i32s", val::i32s({1, -2, 3})).ok());
  ASSERT_TRUE(w.add("t.f32s", val::f32s({0.5f, -1.0f})).ok());
  ASSERT_TRUE(w.add("t.strings", val::strings({"a", "", "bc"})).ok());
  ASSERT_TRUE(w.add("t.nested", val::array(ValueType::array, {val::strings({"x", "yz"}), val::strings({})})).ok());
}

void expect_every_type(const File& f) {
  EXPECT_EQ(f.find("t.u8")->type, ValueType::u8);
  EXPECT_EQ(*f.get_int("t.u8"), 200);
  EXPECT_EQ(*f.get_int("t.i8"), -100);
  EXPECT_EQ(f.find("t.i8")->type, ValueType::i8);
  EXPECT_EQ(*f.get_int("t.u16"), 60000);
  EXPECT_EQ(*f.get_int("t.i16"), -30000);
  EXPECT_EQ(*f.get_int("t.u32"), 4000000000ll);
  EXPECT_EQ(*f.get_int("t.i32"), -2000000000);
  EXPECT_EQ(*f.get_float("t.f32"), 1.5);
  EXPECT_EQ(f.find("t.f32")->type, ValueType::f32);
  EXPECT_EQ(*f.get_bool("t.bool"), true);
  EXPECT_EQ(*f.get_string("t.string"), "hello, gguf");
  EXPECT_EQ(std::get<uint64_t>(f.find("t.u64")->data), 0xfedcba9876543210ull);
  EXPECT_EQ(*f.get_int("t.i64"), -(int64_t(1) << 62));
  EXPECT_EQ(*f.get_float("t.f64"), -0.25);
  EXPECT_EQ(f.find("t.f64")->type, ValueType::f64);
  const Array* a = f.get_array("t.i32s");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 3u);
  EXPECT_EQ(*a->items[1].as_int(), -2);
  const Array* fl = f.get_array("t.f32s");
  ASSERT_NE(fl, nullptr);
  EXPECT_EQ(fl->elem_type, ValueType::f32);
  EXPECT_EQ(*fl->items[1].as_float(), -1.0);
  const Array* s = f.get_array("t.strings");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->items.size(), 3u);
  EXPECT_EQ(*s->items[1].as_string(), "");
  EXPECT_EQ(*s->items[2].as_string(), "bc");
  const Array* n = f.get_array("t.nested");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->items.size(), 2u);
  EXPECT_EQ(*n->items[0].as_array()->items[1].as_string(), "yz");
  EXPECT_TRUE(n->items[1].as_array()->items.empty());
}

struct TestTensor {
  std::string name;
  Type type;
  std::vector<int64_t> ne;
};

class GgufWriterAlignment : public testing::TestWithParam<uint32_t> {};

TEST_P(GgufWriterAlignment, RoundTripThroughTheReader) {
  const uint32_t alignment = GetParam();
  std::mt19937 rng(std::random_device{}());
  Writer w(alignment);
  add_every_type(w);
  const std::vector<TestTensor> specs = {
      {"a.weight", Type::F32, {7}},           {"b.weight", Type::Q4_K, {512, 3}},
      {"c.weight", Type::Q6_K, {256, 5, 1}},  {"d.weight", Type::Q8_0, {32, 2, 3, 1}},
      {"e.weight", Type::F16, {3, 1}},        {"f.weight", Type::BF16, {33, 2}},
  };
  for (const auto& t : specs) ASSERT_TRUE(w.add_tensor(t.name, t.type, t.ne).ok()) << t.name;
  std::vector<std::vector<uint8_t>> data;
  for (const auto& t : w.tensors()) {
    std::vector<uint8_t> bytes(size_t(t.n_bytes));
    for (auto& b : bytes) b = uint8_t(rng());
    data.push_back(std::move(bytes));
  }
  const std::string path = temp_path(std::to_string(alignment));
  ASSERT_TRUE(w.create(path).ok());
  for (size_t i = data.size(); i-- > 0;) ASSERT_TRUE(w.write_tensor(i, data[i]).ok());  // any order
  ASSERT_TRUE(w.finish().ok());
  EXPECT_EQ(std::filesystem::file_size(path), w.file_size());

  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->data_offset(), w.data_offset());
  expect_every_type(*f);
  ASSERT_EQ(f->tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.type, specs[i].type);
    EXPECT_EQ(t.n_dims, int(specs[i].ne.size()));
    for (size_t d = 0; d < specs[i].ne.size(); ++d) EXPECT_EQ(t.ne[d], specs[i].ne[d]);
    EXPECT_EQ(t.offset % alignment, 0u);
    ASSERT_EQ(t.n_bytes, data[i].size());
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), data[i].size()), 0) << t.name;
  }
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufWriterAlignment, testing::Values(32u, 1u, 64u, 4096u));

TEST(GgufWriter, HeaderParsesFromMemory) {
  Writer w;
  add_every_type(w);
  ASSERT_TRUE(w.add_tensor("x", Type::Q4_0, {64, 2}).ok());
  std::vector<uint8_t> bytes = w.header();
  EXPECT_EQ(bytes.size() % 32, 0u);
  bytes.resize(size_t(w.file_size()), 0x5a);
  auto f = File::parse(bytes, "mem.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  expect_every_type(*f);
  EXPECT_EQ(f->find_tensor("x")->n_bytes, 2u * 36u);
}

TEST(GgufWriter, RejectsBadInput) {
  Writer w;
  EXPECT_TRUE(w.add("k", val::u32(1)).ok());
  EXPECT_FALSE(w.add("k", val::u32(2)).ok());  // duplicate key
  EXPECT_FALSE(w.add("mixed", val::array(ValueType::i32, {val::i32(1), val::string("x")})).ok());
  EXPECT_FALSE(w.add("lie", Value{ValueType::string, uint64_t(3)}).ok());
  EXPECT_FALSE(w.add_tensor("q", Type::Q4_K, {100, 2}).ok());  // not whole blocks
  EXPECT_FALSE(w.add_tensor("z", Type::F32, {}).ok());
  EXPECT_FALSE(w.add_tensor("z", Type::F32, {1, 1, 1, 1, 1}).ok());
  EXPECT_FALSE(w.add_tensor("n", Type::F32, {4, 0}).ok());
  EXPECT_FALSE(w.add_tensor("big", Type::F32, {int64_t(1) << 40, int64_t(1) << 40}).ok());
  EXPECT_TRUE(w.add_tensor("t", Type::F32, {4}).ok());
  EXPECT_FALSE(w.add_tensor("t", Type::F32, {4}).ok());  // duplicate name
  EXPECT_FALSE(w.write_tensor(0, {}).ok());              // not created yet
  const std::string path = temp_path("bad");
  ASSERT_TRUE(w.create(path).ok());
  const std::vector<uint8_t> wrong(3);
  EXPECT_FALSE(w.write_tensor(0, wrong).ok());  // wrong size
  EXPECT_FALSE(w.write_tensor(5, wrong).ok());  // no such tensor
  EXPECT_TRUE(w.finish().ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ember::gguf
