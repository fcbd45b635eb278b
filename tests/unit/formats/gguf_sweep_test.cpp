// GGUF reader robustness sweeps: every truncation of a valid file is rejected, and byte
// mutations of the header region never crash (under ASan, never read out of bounds either:
// each candidate is copied into a buffer of exactly its size).
#include <gtest/gtest.h>

#include <random>

#include "formats/gguf/gguf.h"
#include "unit/formats/gguf_builder.h"

namespace ember::gguf {
namespace {

using ember_test::BuiltFile;
using ember_test::FileSpec;
using ember_test::GgufBuilder;
namespace vt = ember_test::vt;
namespace tt = ember_test::tt;

// A small file exercising every part of the format.
BuiltFile sample_file() {
  FileSpec spec;
  spec.alignment = 64;
  spec.n_kv = 5;
  spec.kv = [](GgufBuilder& b) {
    b.kv_string("general.architecture", "llama");
    b.kv_bool("tokenizer.ggml.add_bos_token", true);
    b.kv_f32("llama.rope.freq_base", 10000.0f);
    b.key("tokenizer.ggml.tokens", vt::array).array_header(vt::string, 3).str("<s>").str("a").str("bc");
    b.key("nested", vt::array).array_header(vt::array, 2);
    b.array_header(vt::i16, 2).i16(-1).i16(2);
    b.array_header(vt::f64, 1).f64(0.5);
  };
  spec.tensors = {{"token_embd.weight", {32, 3}, tt::Q8_0}, {"output_norm.weight", {5}, tt::F32},
                  {"blk.0.ffn_up.weight", {256, 1}, tt::Q4_K}};
  return ember_test::build_file(spec);
}

// Parses an exact-size copy; when it parses, its tensors must lie inside the copy.
void parse_copy(const std::vector<uint8_t>& image, size_t length) {
  const std::vector<uint8_t> copy(image.begin(), image.begin() + std::ptrdiff_t(length));
  auto f = File::parse(copy, "sweep.gguf");
  if (!f.ok()) {
    EXPECT_EQ(f.status().kind(), ErrorKind::invalid_file);
    EXPECT_FALSE(f.status().message().empty());
    return;
  }
  for (const TensorInfo& t : f->tensors()) {
    ASSERT_GE(t.data, copy.data());
    ASSERT_LE(t.data + t.n_bytes, copy.data() + copy.size());
  }
}

TEST(GgufSweep, SampleFileParses) {
  const BuiltFile built = sample_file();
  auto f = File::parse(built.bytes, "sample.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->metadata().size(), 6u);
}

TEST(GgufSweep, EveryTruncationIsRejected) {
  const BuiltFile built = sample_file();
  for (size_t length = 0; length < built.bytes.size(); ++length) {
    const std::vector<uint8_t> copy(built.bytes.begin(), built.bytes.begin() + std::ptrdiff_t(length));
    auto f = File::parse(copy, "cut.gguf");
    ASSERT_FALSE(f.ok()) << "truncated to " << length << " of " << built.bytes.size() << " bytes, still parsed";
    EXPECT_EQ(f.status().kind(), ErrorKind::invalid_file);
  }
}

TEST(GgufSweep, HeaderByteMutationsNeverCrash) {
  const BuiltFile built = sample_file();
  std::vector<uint8_t> image = built.bytes;
  for (size_t at = 0; at < built.data_offset; ++at) {
    const uint8_t original = image[at];
    for (uint8_t value : {uint8_t(0), uint8_t(0xff), uint8_t(0x80), uint8_t(original ^ 1)}) {
      image[at] = value;
      parse_copy(image, image.size());
    }
    image[at] = original;
  }
}

TEST(GgufSweep, RandomMutationsNeverCrash) {
  const BuiltFile built = sample_file();
  std::mt19937 rng(12345);
  std::uniform_int_distribution<size_t> pos(0, built.data_offset - 1);
  std::uniform_int_distribution<int> byte(0, 255), count(1, 8);
  for (int iter = 0; iter < 5000; ++iter) {
    std::vector<uint8_t> image = built.bytes;
    for (int k = count(rng); k > 0; --k) image[pos(rng)] = uint8_t(byte(rng));
    parse_copy(image, image.size());
    parse_copy(image, pos(rng));  // mutated and truncated
  }
}

}  // namespace
}  // namespace ember::gguf
