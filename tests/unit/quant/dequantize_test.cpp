// Known-value tests: one hand-built block per format, exact dequantized values.
// They pin the byte layouts (j / j+16 pairing, 5th bits, K-quant scale packing).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace ember::quant {
namespace {

constexpr uint16_t kHalf = 0x3800;    // 0.5 in fp16
constexpr uint16_t kOne = 0x3c00;     // 1.0
constexpr uint16_t kMinusOne = 0xbc00;  // -1.0

template <typename Block>
std::vector<float> dequant(Type type, const Block& b, int n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(type, &b, out.data(), n);
  return out;
}

TEST(Dequantize, Float) {
  const uint16_t f16[2] = {0x3c00, 0xc000};
  float out[2];
  dequantize_row(Type::F16, f16, out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  const uint16_t bf16[2] = {0x3f80, 0xc040};
  dequantize_row(Type::BF16, bf16, out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  const float f32[2] = {1.5f, -0.25f};
  dequantize_row(Type::F32, f32, out, 2);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -0.25f);
}

TEST(Dequantize, Q4_0) {
  block_q4_0 b{};
  b.d = kHalf;
  b.qs[0] = 0x1f;  // element 0: 15, element 16: 1
  b.qs[3] = 0x80;  // element 3: 0, element 19: 8
  const auto y = dequant(Type::Q4_0, b, 32);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], -3.5f);
  EXPECT_EQ(y[3], -4.0f);
  EXPECT_EQ(y[19], 0.0f);
  EXPECT_EQ(y[1], -4.0f);
}

TEST(Dequantize, Q4_1) {
  block_q4_1 b{};
  b.d = kHalf;
  b.m = kMinusOne;
  b.qs[0] = 0x1f;
  b.qs[15] = 0xa0;  // element 15: 0, element 31: 10
  const auto y = dequant(Type::Q4_1, b, 32);
  EXPECT_EQ(y[0], 6.5f);
  EXPECT_EQ(y[16], -0.5f);
  EXPECT_EQ(y[15], -1.0f);
  EXPECT_EQ(y[31], 4.0f);
}

TEST(Dequantize, Q5_0) {
  block_q5_0 b{};
  b.d = kOne;
  const uint32_t qh = (1u << 0) | (1u << 16) | (1u << 21);
  std::memcpy(b.qh, &qh, 4);
  b.qs[0] = 0x21;  // element 0: 1 | 16, element 16: 2 | 16
  b.qs[5] = 0x07;  // element 5: 7 (5th bit clear), element 21: 0 | 16
  const auto y = dequant(Type::Q5_0, b, 32);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[16], 2.0f);
  EXPECT_EQ(y[5], -9.0f);
  EXPECT_EQ(y[21], 0.0f);
  EXPECT_EQ(y[31], -16.0f);
}

TEST(Dequantize, Q5_1) {
  block_q5_1 b{};
  b.d = kHalf;
  b.m = kOne;
  const uint32_t qh = (1u << 31) | (1u << 2);
  std::memcpy(b.qh, &qh, 4);
  b.qs[15] = 0xf0;  // element 31: 15 | 16 = 31
  b.qs[2] = 0x03;   // element 2: 3 | 16 = 19
  const auto y = dequant(Type::Q5_1, b, 32);
  EXPECT_EQ(y[31], 16.5f);
  EXPECT_EQ(y[15], 1.0f);
  EXPECT_EQ(y[2], 10.5f);
  EXPECT_EQ(y[18], 1.0f);
}

TEST(Dequantize, Q8_0) {
  block_q8_0 b{};
  b.d = kHalf;
  b.qs[0] = -128;
  b.qs[31] = 127;
  const auto y = dequant(Type::Q8_0, b, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[31], 63.5f);
}

TEST(Dequantize, Q2_K) {
  block_q2_k b{};
  b.d = kOne;
  b.dmin = kHalf;
  b.scales[0] = 0x23;  // sub-block 0: scale 3, min 2
  b.scales[2] = 0x15;  // sub-block 2: scale 5, min 1
  b.scales[4] = 0x01;
  b.scales[6] = 0x02;
  b.scales[9] = 0x07;  // sub-block 9 = c 1, j 0, l >= 16
  b.qs[0] = 0xe4;      // bits 0-1: 0, 2-3: 1, 4-5: 2, 6-7: 3
  b.qs[48] = 0x02;
  const auto y = dequant(Type::Q2_K, b, 256);
  EXPECT_EQ(y[0], -1.0f);    // 3*0 - 0.5*2
  EXPECT_EQ(y[32], 4.5f);    // 5*1 - 0.5*1
  EXPECT_EQ(y[64], 2.0f);    // 1*2
  EXPECT_EQ(y[96], 6.0f);    // 2*3
  EXPECT_EQ(y[144], 14.0f);  // 7*2
}

TEST(Dequantize, Q3_K) {
  block_q3_k b{};
  b.d = kOne;
  // 6-bit scale s stores s + 32; sub-block 0 = +1, 9 = +3, 14 = +31, others -32.
  b.scales[0] = 0x01;   // scale 0 low nibble 1 (high bits 2 from scales[8])
  b.scales[8] = 0x02;   // scale 0 high bits: 2 -> 0x21 = 33
  b.scales[1] = 0x30;   // scale 9 low nibble 3
  b.scales[9] = 0x20;   // scale 9 high bits (shift 4): 2 -> 35
  b.scales[6] = 0xf0;   // scale 14 low nibble 15
  b.scales[10] = 0xc0;  // scale 14 high bits (shift 6): 3 -> 63
  b.qs[0] = 0x02;
  b.hmask[0] = 0x81;  // element 0: bit 0 set; element 224: bit 7 set
  b.qs[1] = 0x01;     // element 1: bit clear -> 1 - 4
  b.qs[48] = 0x03;
  b.hmask[16] = 0x10;  // element 144 (c 1, j 0, l 16): bit 4
  b.qs[32] = 0x40;     // element 224 (c 1, j 3, l 0): low bits 1
  const auto y = dequant(Type::Q3_K, b, 256);
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_EQ(y[144], 9.0f);
  EXPECT_EQ(y[224], 31.0f);
  EXPECT_EQ(y[16], 128.0f);  // scale -32, quant -4
}

// Sub-block 0: scale 2, min 4; sub-block 5: scale 35, min 17 (split 6-bit fields).
void fill_k4_scales(uint8_t* s) {
  s[0] = 2;     // scale 0
  s[4] = 4;     // min 0
  s[1] = 0x80;  // scale 1 = 0; top bits 2 = scale 5 bits 4-5
  s[5] = 0x40;  // min 1 = 0; top bits 1 = min 5 bits 4-5
  s[9] = 0x13;  // scale 5 low nibble 3, min 5 low nibble 1
}

TEST(Dequantize, Q4_K) {
  block_q4_k b{};
  b.d = kOne;
  b.dmin = kHalf;
  fill_k4_scales(b.scales);
  b.qs[0] = 0x05;   // element 0 (sub-block 0): 5; element 32 (sub-block 1): 0
  b.qs[64] = 0x70;  // element 160 (sub-block 5): 7
  const auto y = dequant(Type::Q4_K, b, 256);
  EXPECT_EQ(y[0], 8.0f);       // 2*5 - 0.5*4
  EXPECT_EQ(y[32], 0.0f);
  EXPECT_EQ(y[160], 236.5f);   // 35*7 - 0.5*17
  EXPECT_EQ(y[1], -2.0f);
}

TEST(Dequantize, Q5_K) {
  block_q5_k b{};
  b.d = kOne;
  b.dmin = kHalf;
  fill_k4_scales(b.scales);
  b.qs[64] = 0x70;
  b.qh[0] = 0x20;  // bit 5 = element 160's 5th bit
  b.qh[1] = 0x01;  // bit 0 = element 1's 5th bit
  const auto y = dequant(Type::Q5_K, b, 256);
  EXPECT_EQ(y[160], 796.5f);  // 35*23 - 8.5
  EXPECT_EQ(y[1], 30.0f);     // 2*16 - 2
  EXPECT_EQ(y[128], 0.0f);
}

TEST(Dequantize, Q6_K) {
  block_q6_k b{};
  b.d = kHalf;
  b.scales[0] = 2;
  b.scales[2] = 1;
  b.scales[4] = 1;
  b.scales[5] = -3;
  b.scales[6] = 1;
  b.scales[14] = 4;
  b.ql[0] = 0x21;
  b.qh[0] = 0x1b;   // element 0: 2 bits 3, element 32: 2, element 64: 1, element 96: 0
  b.ql[32] = 0x5a;  // element 32: 10, element 96: 5
  b.ql[96] = 0xf0;  // element 224 low 4 bits 15
  b.qh[32] = 0xc0;  // element 224 high bits 3
  const auto y = dequant(Type::Q6_K, b, 256);
  EXPECT_EQ(y[0], 17.0f);    // 0.5*2*(49-32)
  EXPECT_EQ(y[32], 5.0f);    // 0.5*1*(42-32)
  EXPECT_EQ(y[64], -7.0f);   // 0.5*1*(18-32)
  EXPECT_EQ(y[96], -13.5f);  // 0.5*1*(5-32)
  EXPECT_EQ(y[80], 48.0f);   // 0.5*-3*(0-32)
  EXPECT_EQ(y[224], 62.0f);  // 0.5*4*(63-32)
}

TEST(Dequantize, Q8_K) {
  block_q8_k b{};
  b.d = 0.25f;
  b.qs[255] = -100;
  std::vector<float> y(256);
  dequantize_row(Type::Q8_K, &b, y.data(), 256);
  EXPECT_EQ(y[255], -25.0f);
  EXPECT_EQ(y[0], 0.0f);
}

}  // namespace
}  // namespace ember::quant
