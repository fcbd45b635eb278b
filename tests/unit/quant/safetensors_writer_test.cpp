// The safetensors writer `ember quantize` uses: what it writes must pass the strict reader
// (formats/safetensors), keep every tensor aligned to its element size, round-trip the
// bytes, and shard through an index the Checkpoint reader follows.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "formats/safetensors/writer.h"
#include "quant_test_util.h"

namespace ember::safetensors {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ember_st_writer_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(quant::testing::fresh_seed()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// Odd-sized byte tensors between wider ones: the layout must still align every tensor.
void fill(Writer& w, std::mt19937& rng, std::map<std::string, std::vector<uint8_t>>& want) {
  const struct { const char* name; Dtype dtype; std::vector<int64_t> shape; } specs[] = {
      {"a.weight_packed", Dtype::U8, {7, 5}},  {"a.weight_scale", Dtype::F8_E4M3, {7, 3}},
      {"a.weight_global_scale", Dtype::F32, {1}}, {"b.weight", Dtype::BF16, {3, 9}},
      {"c.norm", Dtype::F32, {13}},            {"d.big", Dtype::F64, {2, 2}},
      {"e.empty", Dtype::F16, {0, 4}},
  };
  for (const auto& s : specs) {
    size_t n = dtype_size(s.dtype);
    for (int64_t d : s.shape) n *= size_t(d);
    want[s.name] = random_bytes(rng, n);
    ASSERT_TRUE(w.add(s.name, s.dtype, s.shape, want[s.name]).ok()) << s.name;
  }
}

TEST(SafetensorsWriter, ReaderAcceptsAndBytesRoundTrip) {
  const uint32_t seed = quant::testing::fresh_seed();
  SCOPED_TRACE(quant::testing::seed_note(seed));
  std::mt19937 rng(seed);
  TempDir tmp;
  Writer w;
  std::map<std::string, std::vector<uint8_t>> want;
  fill(w, rng, want);
  w.set_metadata("format", "pt");
  const std::string path = (tmp.path / "model.safetensors").string();
  ASSERT_TRUE(w.write_file(path).ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->header_bytes() % 8, 0u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), want.size());
  for (const TensorInfo& t : f->tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ((8 + f->header_bytes() + t.offset) % dtype_size(t.dtype), 0u);
    ASSERT_EQ(t.n_bytes, want[t.name].size());
    EXPECT_TRUE(std::equal(t.data, t.data + t.n_bytes, want[t.name].begin()));
  }
  EXPECT_EQ(f->find_tensor("b.weight")->shape, (std::vector<int64_t>{3, 9}));
}

TEST(SafetensorsWriter, ShardsThroughAnIndex) {
  const uint32_t seed = quant::testing::fresh_seed();
  SCOPED_TRACE(quant::testing::seed_note(seed));
  std::mt19937 rng(seed);
  TempDir tmp;
  Writer w;
  std::map<std::string, std::vector<uint8_t>> want;
  fill(w, rng, want);
  ASSERT_TRUE(w.write_dir(tmp.path.string(), 40).ok());
  EXPECT_TRUE(fs::exists(tmp.path / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(tmp.path / "model.safetensors"));
  auto c = Checkpoint::open(tmp.path.string());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_GT(c->files().size(), 1u);
  for (const auto& [name, bytes] : want) {
    const TensorInfo* t = c->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_TRUE(std::equal(t->data, t->data + t->n_bytes, bytes.begin())) << name;
  }
}

TEST(SafetensorsWriter, RefusesBadTensors) {
  Writer w;
  EXPECT_TRUE(w.add("x", Dtype::F32, {2}, std::vector<uint8_t>(8)).ok());
  const Status dup = w.add("x", Dtype::F32, {2}, std::vector<uint8_t>(8));
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("'x' added twice"), std::string::npos) << dup.message();
  const Status size = w.add("y", Dtype::BF16, {3, 3}, std::vector<uint8_t>(17));
  EXPECT_FALSE(size.ok());
  EXPECT_NE(size.message().find("needs 18 bytes, got 17"), std::string::npos) << size.message();
  EXPECT_FALSE(w.add("z", Dtype::U8, {-1}, {}).ok());
  EXPECT_FALSE(w.add("__metadata__", Dtype::U8, {0}, {}).ok());
  EXPECT_FALSE(w.write_file("/nonexistent-dir/x.safetensors").ok());
}

}  // namespace
}  // namespace ember::safetensors
