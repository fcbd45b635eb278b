// Golden blocks from the bundled real models (the 6th block of one tensor per format),
// with values computed by gguf-py's independent numpy dequantizer. They pin ember's
// layouts to what llama.cpp's converters actually wrote. Generated once with gguf-py;
// the bytes are copied verbatim from the GGUF files named below.
#include <gtest/gtest.h>

#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "quant/dequantize.h"

namespace ember::quant {
namespace {

struct Golden {
  Type type;
  const char* source;          // model file and tensor the block comes from
  std::string_view bytes;      // one block
  std::vector<std::pair<int, float>> values;  // (element, gguf-py value)
  double sum, sum_squares;     // over the whole block, in double
};

const std::vector<Golden>& goldens() {
  static const std::vector<Golden> g = {
      {Type::Q4_1, "SmolLM2-135M-Instruct.Q4_1.gguf blk.3.ffn_up.weight",
       std::string_view(
           "\x44\x2a\xf8\xb5\x9f\x6b\x99\x57\x67\xe5\x55\xa5\xa3\xd7\xe6\x60"
           "\x48\x8c\xdc\x76"
           , 20),
       {{0, 0x1.71e0000000000p-2f}, {1, 0x1.52c0000000000p-3f}, {15, -0x1.4500000000000p-4f}, {16, 0x1.1480000000000p-4f}, {17, -0x1.4500000000000p-4f}, {31, -0x1.f200000000000p-6f}},
       0.6427001953125, 0.9640936404466629},
      {Type::Q8_0, "SmolLM2-135M-Instruct.Q4_1.gguf token_embd.weight",
       std::string_view(
           "\x6b\x19\xf8\x3c\xce\xeb\xf6\x1e\xea\x0b\x27\xdf\xd2\x68\x37\x31"
           "\x46\x81\xfd\x0c\xbc\x12\x19\x35\x11\x3f\xf1\xf9\x48\x06\xb6\x39"
           "\x04\xe6"
           , 34),
       {{0, -0x1.5ac0000000000p-6f}, {1, 0x1.4514000000000p-3f}, {15, -0x1.580a800000000p-2f}, {16, -0x1.0410000000000p-7f}, {17, 0x1.0410000000000p-5f}, {31, -0x1.19bc000000000p-4f}},
       0.6216907501220703, 0.5452703282899165},
      {Type::Q5_0, "gemma-3-270m-q4_k_m.gguf blk.2.attn_q.weight",
       std::string_view(
           "\xb8\x1b\xf2\xaa\x50\x21\x6c\xde\x42\xfe\x93\xc0\xba\xc7\xad\xcf"
           "\xff\x93\xe0\x16\xee\x43"
           , 22),
       {{0, -0x1.ee00000000000p-7f}, {1, 0x1.b040000000000p-5f}, {15, 0x1.7280000000000p-7f}, {16, -0x1.34c0000000000p-5f}, {17, -0x1.7280000000000p-7f}, {31, -0x1.7280000000000p-5f}},
       -0.04522705078125, 0.027358376886695623},
      {Type::Q4_K, "gemma-3-270m-q4_k_m.gguf blk.2.attn_output.weight",
       std::string_view(
           "\x04\x0c\x54\x17\xa3\xa1\xad\xbf\x9b\x98\xbd\x7f\x53\x75\x45\xf4"
           "\x38\x26\x07\x73\x54\xb5\x28\x64\x47\x35\x20\x3a\x37\x62\x09\x42"
           "\x16\xb7\x23\x4b\x6c\x6c\x67\x0a\x3f\x17\x51\x96\x68\xf5\x75\x22"
           "\x6e\x2b\xe7\x79\x37\xa4\x8d\x8b\x75\x96\x5a\x60\x7d\x2a\x59\x88"
           "\x92\x7c\x9b\x08\x88\x47\x57\xa7\x7f\x49\x7a\x76\x8e\x68\x68\x5e"
           "\x4b\x53\x77\xb8\xab\x80\x5e\x39\xdb\xe6\x47\xca\x89\xac\x86\x88"
           "\x36\x5c\x3a\xa4\x56\xa8\xa5\x9b\x98\x75\x81\x8a\xb5\x08\xd6\x87"
           "\x25\x48\x65\x89\x06\x6c\x4f\x28\x5b\xe2\x2a\xc5\xa7\x45\x67\x64"
           "\x77\xd8\x6a\x86\x63\x76\xc7\x43\x75\x48\x77\x30\xcc\x78\xaa\xd4"
           , 144),
       {{0, 0x1.4cf0000000000p-6f}, {1, 0x1.9ec0000000000p-9f}, {15, -0x1.fe58000000000p-6f}, {16, 0x1.9ec0000000000p-9f}, {17, 0x1.80c8000000000p-7f}, {31, -0x1.fe58000000000p-6f}, {32, -0x1.31f4000000000p-6f}, {63, -0x1.b678000000000p-6f}, {64, 0x1.72e4000000000p-5f}, {100, -0x1.0fef000000000p-4f}, {127, -0x1.22e2000000000p-5f}, {128, 0x1.cd74000000000p-6f}, {200, 0x1.218e000000000p-5f}, {255, 0x1.e550000000000p-5f}},
       -0.646519660949707, 0.27441384060239216},
      {Type::Q6_K, "gemma-3-270m-q4_k_m.gguf blk.0.ffn_down.weight",
       std::string_view(
           "\x53\xff\x41\xf2\x94\xc9\xad\xbf\xe3\xef\x94\x31\x0a\x98\xb2\x10"
           "\x78\x5f\x2a\x19\xf1\x5b\x37\x27\x39\xe9\x12\xf1\x36\xfe\x45\xb0"
           "\x9e\x62\x47\xd1\x4c\xe7\x45\xc6\x6d\x84\x44\x02\x97\x14\x72\x4f"
           "\xd8\x99\xf6\x47\xc0\x2d\x0b\x18\x57\x83\x1b\x60\xdb\xca\x2d\xf2"
           "\xbe\xb6\x8e\xb2\x9a\x16\xf6\x28\x3b\x90\xe5\x1e\xeb\x9f\x8c\xd1"
           "\x70\xbb\x33\xc4\x9c\x11\x67\xc9\x3b\xb6\xab\x89\xb0\x80\xdb\x6a"
           "\x40\x5c\xe5\x1d\xad\x78\x6a\x22\x50\x5f\xe3\x75\x72\x0b\x40\x50"
           "\x76\x61\xd9\x28\x0f\x87\x61\xa5\x21\x47\x02\xab\xf8\xf4\x11\xc3"
           "\xb2\x55\xb6\x10\x9b\x49\x79\xa5\xb5\x48\x64\x1b\x06\xdd\xbb\x54"
           "\x66\xa1\x69\x89\xd2\xaa\x14\x86\x16\x39\xd6\x94\xa6\x55\xa6\xaa"
           "\xa2\x45\x9e\xb6\x66\x68\x9a\xb9\xa5\x90\x5a\x89\x45\x19\xa9\x9e"
           "\x86\xd7\xaa\x98\x58\x04\xa0\xab\xae\xe6\xa9\x74\x5b\x2f\x14\x99"
           "\xcb\xb6\xa5\xa0\xcf\xbe\x4b\x43\xa7\xc8\x43\x51\x39\xc5\x80\x3f"
           "\x4c\x81"
           , 210),
       {{0, 0x1.9c68000000000p-9f}, {1, -0x1.12f0000000000p-10f}, {15, -0x1.12f0000000000p-5f}, {16, 0x1.7fe0000000000p-7f}, {17, -0x1.7fe0000000000p-10f}, {31, 0x0.0p+0f}, {32, -0x1.0989000000000p-5f}, {63, 0x1.f200000000000p-9f}, {64, 0x1.4d9f000000000p-6f}, {100, -0x1.8510000000000p-8f}, {127, -0x1.45d7000000000p-6f}, {128, 0x1.93fa000000000p-6f}, {200, -0x1.bb88000000000p-9f}, {255, -0x1.ea38000000000p-7f}},
       -0.44510817527770996, 0.10337063834589344},
  };
  return g;
}

TEST(GoldenBlocks, MatchGgufPy) {
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.source);
    const int64_t n = traits(g.type).block_size;
    ASSERT_EQ(int64_t(g.bytes.size()), traits(g.type).block_bytes);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(g.type, g.bytes.data(), y.data(), n);
    for (const auto& [i, v] : g.values) EXPECT_EQ(y[size_t(i)], v) << "element " << i;
    double sum = 0, sum_squares = 0;
    for (float v : y) {
      sum += v;
      sum_squares += double(v) * v;
    }
    EXPECT_NEAR(sum, g.sum, 1e-9 * (1 + std::fabs(g.sum)));
    EXPECT_NEAR(sum_squares, g.sum_squares, 1e-9 * g.sum_squares);
  }
}

}  // namespace
}  // namespace ember::quant

