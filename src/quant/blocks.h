// Block layouts of the ggml/GGUF quant formats, byte-exact with the files that
// llama.cpp's converters write. All multi-byte fields are little-endian; `d`, `m`,
// `dmin` and `s` are fp16 bit patterns (see core/half.h).
//
// Element order inside a block (see docs/quant.md):
//   Q4_0/Q4_1/Q5_0/Q5_1: qs[j] low nibble -> element j, high nibble -> element j+16;
//     Q5_*: bit j of the little-endian uint32 qh is the 5th bit of element j.
//   K-quants: 256 elements in sub-blocks of 16 or 32, described per struct.
#pragma once
#include <cstdint>

namespace ember::quant {

constexpr int kQK = 32;    // elements per block of the simple formats
constexpr int kQK_K = 256;  // elements per K-quant super-block

#pragma pack(push, 1)

// x = (q - 8) * d, q in 0..15
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

// x = q * d + m, q in 0..15
struct block_q4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};

// x = (q - 16) * d, q in 0..31 (low 4 bits in qs, 5th bit in qh)
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = q * d + m, q in 0..31
struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = q * d
struct block_q8_0 {
  uint16_t d;
  int8_t qs[kQK];
};

// Activation side of Q4_1/Q5_1 dots: x = q * d, s = d * sum(q).
struct block_q8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

// 16 sub-blocks of 16. scales[i]: low 4 bits scale, high 4 bits min of sub-block i.
// Element 128*c + 32*j + l (c < 2, j < 4, l < 32) is bits 2j..2j+1 of qs[32*c + l],
// sub-block 8*c + 2*j + l/16. x = d * scale * q - dmin * min.
struct block_q2_k {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16 with 6-bit signed scales (stored +32) packed in 12 bytes:
// scale i low 4 bits: i < 8 ? scales[i] & 15 : scales[i - 8] >> 4;
// high 2 bits: (scales[8 + i % 4] >> (2 * (i / 4))) & 3.
// Element 128*c + 32*j + l: low 2 bits as in Q2_K, 3rd bit = bit (4*c + j) of
// hmask[l]; q = low2 - (bit ? 0 : 4) in -4..3. x = d * (scale - 32) * q.
struct block_q3_k {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 sub-blocks of 32 with 6-bit scale and min packed in 12 bytes:
// j < 4: scale = scales[j] & 63, min = scales[j + 4] & 63;
// j >= 4: scale = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4,
//         min = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4.
// Element 64*c + l (l < 32) is the low nibble of qs[32*c + l] (sub-block 2c),
// element 64*c + 32 + l the high nibble (sub-block 2c+1). x = d*scale*q - dmin*min.
struct block_q4_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K plus a 5th bit: element 64*c + l uses bit 2c of qh[l], element
// 64*c + 32 + l bit 2c+1 of qh[l].
struct block_q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16 with int8 scales; q in 0..63, x = d * scale * (q - 32).
// Half h (128 elements) uses ql[64h..], qh[32h..]; for l < 32:
//   element 128h + l      : ql[l] & 15      | (qh[l] >> 0 & 3) << 4
//   element 128h + l + 32 : ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4
//   element 128h + l + 64 : ql[l] >> 4      | (qh[l] >> 4 & 3) << 4
//   element 128h + l + 96 : ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4
// and element e uses scales[e / 16].
struct block_q6_k {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// Activation side of K-quant dots: x = q * d (fp32 d); bsums[i] = sum of qs[16i..16i+15].
struct block_q8_k {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// The FP4 formats store E2M1 codes (quant/fp4.h): bit 3 sign, values
// ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.

// MXFP4 (OCP microscaling, ggml id 39): x = e2m1(q) * 2^(e - 127). GGUF pairing:
// qs[j] low nibble -> element j, high nibble -> element j + 16.
struct block_mxfp4 {
  uint8_t e;  // E8M0 exponent (0xff: NaN)
  uint8_t qs[kQK / 2];
};

// NVFP4 block of 16 (ember-internal type, never in GGUF): x = e2m1(q) * e4m3(d), times
// the tensor's global scale that lives outside the blocks (Linear::scale). HF pairing:
// qs[j] low nibble -> element 2j, high nibble -> element 2j + 1.
constexpr int kQK_NV = 16;
struct block_nvfp4 {
  uint8_t d;  // FP8 E4M3 block scale
  uint8_t qs[kQK_NV / 2];
};

#pragma pack(pop)

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_k) == 84);
static_assert(sizeof(block_q3_k) == 110);
static_assert(sizeof(block_q4_k) == 144);
static_assert(sizeof(block_q5_k) == 176);
static_assert(sizeof(block_q6_k) == 210);
static_assert(sizeof(block_q8_k) == 292);
static_assert(sizeof(block_mxfp4) == 17);
static_assert(sizeof(block_nvfp4) == 9);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void unpack_scale_min_k4(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = uint8_t((scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4));
    *min = uint8_t((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Unpacks the 16 6-bit Q3_K scales to signed values in -32..31.
inline void unpack_scales_q3_k(const uint8_t* scales, int8_t* out) {
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? scales[i] & 15 : scales[i - 8] >> 4;
    const int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    out[i] = int8_t((low | (high << 4)) - 32);
  }
}

}  // namespace ember::quant
