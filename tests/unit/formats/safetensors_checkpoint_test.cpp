// Checkpoint: a single file, a sharded index, and malformed indexes.
#include <gtest/gtest.h>

#include "formats/safetensors/safetensors.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

using namespace ember_test;

void write_shards(const TempDir& dir) {
  SafetensorsBuilder a, b;
  a.tensors.push_back(st_f32("w1", {2}, {1, 2}));
  a.tensors.push_back(st_f32("w2", {1}, {3}));
  b.tensors.push_back(st_f32("w3", {3}, {4, 5, 6}));
  write_file(dir.path() / "model-00001-of-00002.safetensors", a.build());
  write_file(dir.path() / "model-00002-of-00002.safetensors", b.build());
}

const std::string kIndex = R"({"metadata":{"total_size":24},"weight_map":{
  "w1":"model-00001-of-00002.safetensors","w2":"model-00001-of-00002.safetensors",
  "w3":"model-00002-of-00002.safetensors"}})";

void expect_open_error(const std::string& path, ErrorKind kind, const std::string& needle) {
  auto c = safetensors::Checkpoint::open(path);
  ASSERT_FALSE(c.ok()) << needle;
  EXPECT_EQ(c.status().kind(), kind) << c.status().message();
  EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
}

TEST(SafetensorsCheckpoint, SingleFile) {
  TempDir dir("st_single");
  SafetensorsBuilder b;
  b.tensors.push_back(st_f32("x", {2}, {1, 2}));
  write_file(dir.path() / "model.safetensors", b.build());
  auto c = safetensors::Checkpoint::open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_NE(c->find_tensor("x"), nullptr);
  EXPECT_EQ(c->tensor_names(), std::vector<std::string>{"x"});
  auto direct = safetensors::Checkpoint::open((dir.path() / "model.safetensors").string());
  ASSERT_TRUE(direct.ok());
}

TEST(SafetensorsCheckpoint, ShardedIndex) {
  TempDir dir("st_sharded");
  write_shards(dir);
  write_text(dir.path() / "model.safetensors.index.json", kIndex);
  auto c = safetensors::Checkpoint::open(dir.str());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->files().size(), 2u);
  EXPECT_EQ(c->tensor_names(), (std::vector<std::string>{"w1", "w2", "w3"}));
  float v;
  std::memcpy(&v, c->find_tensor("w3")->data + 8, 4);
  EXPECT_EQ(v, 6.0f);
}

TEST(SafetensorsCheckpoint, NothingThere) {
  TempDir dir("st_empty");
  expect_open_error(dir.str(), ErrorKind::not_found, "neither model.safetensors.index.json nor model.safetensors");
}

TEST(SafetensorsCheckpoint, MissingShard) {
  TempDir dir("st_missing_shard");
  write_text(dir.path() / "model.safetensors.index.json", kIndex);
  expect_open_error(dir.str(), ErrorKind::not_found, "model-00001-of-00002.safetensors");
}

TEST(SafetensorsCheckpoint, TensorNotInItsShard) {
  TempDir dir("st_wrong_shard");
  write_shards(dir);
  write_text(dir.path() / "model.safetensors.index.json",
             R"({"weight_map":{"w3":"model-00001-of-00002.safetensors"}})");
  expect_open_error(dir.str(), ErrorKind::invalid_file, "puts tensor 'w3' in model-00001-of-00002.safetensors");
}

TEST(SafetensorsCheckpoint, ShardOutsideTheFolder) {
  TempDir dir("st_traversal");
  write_text(dir.path() / "model.safetensors.index.json", R"({"weight_map":{"w":"../evil.safetensors"}})");
  expect_open_error(dir.str(), ErrorKind::invalid_file, "not a plain file name");
}

TEST(SafetensorsCheckpoint, MalformedIndex) {
  EXPECT_FALSE(safetensors::parse_index("{", "i.json").ok());
  EXPECT_NE(safetensors::parse_index("{}", "i.json").status().message().find("missing object 'weight_map'"),
            std::string::npos);
  EXPECT_NE(safetensors::parse_index(R"({"weight_map":{"a":1}})", "i.json").status().message().find("weight_map['a']"),
            std::string::npos);
  EXPECT_NE(safetensors::parse_index(R"({"weight_map":{}})", "i.json").status().message().find("empty"),
            std::string::npos);
}

// Found by tests/e2e/malformed_safetensors.py: a shard name longer than a file name can be
// reached File::open, whose ENAMETOOLONG is an I/O error (exit 1), not a bad index (exit 2).
TEST(SafetensorsCheckpoint, OverlongShardName) {
  const std::string text = R"({"weight_map":{"w":")" + std::string(5000, 'x') + R"("}})";
  auto map = safetensors::parse_index(text, "i.json");
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.status().kind(), ErrorKind::invalid_file);
  EXPECT_NE(map.status().message().find("not a plain file name"), std::string::npos);
  EXPECT_TRUE(safetensors::parse_index(R"({"weight_map":{"w":")" + std::string(255, 'x') + R"("}})", "i.json").ok());
}

}  // namespace
}  // namespace ember
