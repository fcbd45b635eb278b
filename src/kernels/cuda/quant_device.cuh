// Device-side decoding of GGUF weight rows, shared by the GEMV, the dequantize-to-f16
// kernel and the embedding gather. Layouts: quant/blocks.h and docs/quant.md.
//
// A row of K elements is walked in "chunks" (a block, or a part of a K-quant
// super-block); decode_chunk<T>(row, c, emit) calls emit(e0, v) with 8 consecutive
// dequantized elements v[0..8) that sit at row positions e0..e0+7. Every chunk is a
// whole number of such groups, so callers can use 16-byte loads/stores of x and y.
#pragma once
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "quant/types.h"

namespace ember::cuda::qdev {

using quant::Type;

template <Type T>
struct Chunk;  // kElems: elements per chunk; kAlign: bytes the row start must be aligned to
template <> struct Chunk<Type::F32> { static constexpr int kElems = 8, kAlign = 16; };
template <> struct Chunk<Type::F16> { static constexpr int kElems = 8, kAlign = 16; };
template <> struct Chunk<Type::BF16> { static constexpr int kElems = 8, kAlign = 16; };
template <> struct Chunk<Type::Q4_0> { static constexpr int kElems = 32, kAlign = 2; };
template <> struct Chunk<Type::Q4_1> { static constexpr int kElems = 32, kAlign = 4; };
template <> struct Chunk<Type::Q5_0> { static constexpr int kElems = 32, kAlign = 2; };
template <> struct Chunk<Type::Q8_0> { static constexpr int kElems = 32, kAlign = 2; };
template <> struct Chunk<Type::Q4_K> { static constexpr int kElems = 64, kAlign = 16; };
template <> struct Chunk<Type::Q6_K> { static constexpr int kElems = 128, kAlign = 2; };
template <> struct Chunk<Type::NVFP4> { static constexpr int kElems = 16, kAlign = 1; };  // 9-byte blocks
template <> struct Chunk<Type::MXFP4> { static constexpr int kElems = 32, kAlign = 1; };  // 17-byte blocks

__device__ __forceinline__ float f16_bits(uint16_t b) { return __half2float(__ushort_as_half(b)); }
__device__ __forceinline__ float bf16_bits(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
__device__ __forceinline__ uint16_t ld_u16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }

// 16 bytes from an address that is only 2-byte (resp. 4-byte) aligned, as 4 words.
__device__ __forceinline__ uint4 ld16_a2(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = uint32_t(h[2 * i]) | uint32_t(h[2 * i + 1]) << 16;
  return make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ uint4 ld16_a4(const uint8_t* p) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(p);
  return make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ uint4 ld16_a16(const uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }

__device__ __forceinline__ uint32_t word(const uint4& q, int i) {
  return i == 0 ? q.x : i == 1 ? q.y : i == 2 ? q.z : q.w;  // i is a compile-time constant after unrolling
}

// The 4-bit blocks: 16 bytes qs, element j low nibble of qs[j], element j+16 high.
// value(q, e) maps the 4-bit code q of element e (0..31) to its float.
template <typename Value, typename Emit>
__device__ __forceinline__ void emit_nibbles32(const uint4& qs, int64_t e_base, Value value, Emit& emit) {
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const uint32_t a = word(qs, (g & 1) * 2), b = word(qs, (g & 1) * 2 + 1);
    const int shift = (g >> 1) * 4;
    float v[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[i] = value(int((a >> (8 * i + shift)) & 15), 8 * g + i);
      v[4 + i] = value(int((b >> (8 * i + shift)) & 15), 8 * g + 4 + i);
    }
    emit(e_base + 8 * g, v);
  }
}

template <Type T>
struct RowDecoder;  // static void chunk(const uint8_t* row, int64_t c, Emit& emit)

template <>
struct RowDecoder<Type::F32> {
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const float4* p = reinterpret_cast<const float4*>(row) + 2 * c;
    const float4 a = p[0], b = p[1];
    const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    emit(8 * c, v);
  }
};

template <>
struct RowDecoder<Type::F16> {
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint4 q = ld16_a16(row + 16 * c);
    float v[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = f16_bits(uint16_t(word(q, i) & 0xffff));
      v[2 * i + 1] = f16_bits(uint16_t(word(q, i) >> 16));
    }
    emit(8 * c, v);
  }
};

template <>
struct RowDecoder<Type::BF16> {
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint4 q = ld16_a16(row + 16 * c);
    float v[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = __uint_as_float(word(q, i) << 16);
      v[2 * i + 1] = __uint_as_float(word(q, i) & 0xffff0000u);
    }
    emit(8 * c, v);
  }
};

template <>
struct RowDecoder<Type::Q4_0> {  // 18 bytes: d, qs[16]; x = (q - 8) d
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 18 * c;
    const float d = f16_bits(ld_u16(blk));
    emit_nibbles32(ld16_a2(blk + 2), 32 * c, [d](int q, int) { return float(q - 8) * d; }, emit);
  }
};

template <>
struct RowDecoder<Type::Q4_1> {  // 20 bytes: d, m, qs[16]; x = q d + m
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 20 * c;
    const uint32_t dm = *reinterpret_cast<const uint32_t*>(blk);
    const float d = f16_bits(uint16_t(dm & 0xffff)), m = f16_bits(uint16_t(dm >> 16));
    emit_nibbles32(ld16_a4(blk + 4), 32 * c, [d, m](int q, int) { return float(q) * d + m; }, emit);
  }
};

template <>
struct RowDecoder<Type::Q5_0> {  // 22 bytes: d, qh[4], qs[16]; x = (q - 16) d, bit e of qh = 5th bit
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 22 * c;
    const float d = f16_bits(ld_u16(blk));
    const uint32_t qh = uint32_t(ld_u16(blk + 2)) | uint32_t(ld_u16(blk + 4)) << 16;
    emit_nibbles32(ld16_a2(blk + 6), 32 * c,
                   [d, qh](int q, int e) { return float((q | int((qh >> e) & 1) << 4) - 16) * d; }, emit);
  }
};

template <>
struct RowDecoder<Type::Q8_0> {  // 34 bytes: d, qs[32] int8; x = q d
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 34 * c;
    const float d = f16_bits(ld_u16(blk));
    const uint4 q[2] = {ld16_a2(blk + 2), ld16_a2(blk + 18)};
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint32_t a = word(q[g >> 1], (g & 1) * 2), b = word(q[g >> 1], (g & 1) * 2 + 1);
      float v[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[i] = float(int8_t((a >> (8 * i)) & 255)) * d;
        v[4 + i] = float(int8_t((b >> (8 * i)) & 255)) * d;
      }
      emit(32 * c + 8 * g, v);
    }
  }
};

// Q4_K: 144 bytes: d, dmin, scales[12], qs[128]. Chunk = 64 elements (quarter cc of
// super-block c / 4): low nibbles of qs[32cc..] are sub-block 2cc, high nibbles 2cc+1.
template <>
struct RowDecoder<Type::Q4_K> {
  static __device__ __forceinline__ void scale_min(const uint8_t* sc, int j, float& s, float& m) {
    if (j < 4) {
      s = float(sc[j] & 63);
      m = float(sc[j + 4] & 63);
    } else {
      s = float((sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4));
      m = float((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
    }
  }
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 144 * (c >> 2);
    const int cc = int(c & 3);
    const uint32_t dm = *reinterpret_cast<const uint32_t*>(blk);
    const float d = f16_bits(uint16_t(dm & 0xffff)), dmin = f16_bits(uint16_t(dm >> 16));
    float s0, m0, s1, m1;
    scale_min(blk + 4, 2 * cc, s0, m0);
    scale_min(blk + 4, 2 * cc + 1, s1, m1);
    const float a0 = d * s0, b0 = dmin * m0, a1 = d * s1, b1 = dmin * m1;
    const uint4 q[2] = {ld16_a16(blk + 16 + 32 * cc), ld16_a16(blk + 32 + 32 * cc)};
#pragma unroll
    for (int g = 0; g < 8; ++g) {
      const int shift = (g >> 2) * 4;
      const float a = g < 4 ? a0 : a1, b = g < 4 ? b0 : b1;
      const uint32_t w0 = word(q[(g & 3) >> 1], ((g & 3) & 1) * 2), w1 = word(q[(g & 3) >> 1], ((g & 3) & 1) * 2 + 1);
      float v[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[i] = a * float((w0 >> (8 * i + shift)) & 15) - b;
        v[4 + i] = a * float((w1 >> (8 * i + shift)) & 15) - b;
      }
      emit(64 * c + 8 * g, v);
    }
  }
};

// Q6_K: 210 bytes: ql[128], qh[64], scales[16] int8, d. Chunk = one half h of a
// super-block (128 elements): element 32j + l uses ql[64h + l + 32(j&1)] nibble j>>1,
// qh[32h + l] bits 2j..2j+1, scale[8h + 2j + l/16].
template <>
struct RowDecoder<Type::Q6_K> {
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 210 * (c >> 1);
    const int h = int(c & 1);
    const float d = f16_bits(ld_u16(blk + 208));
    const uint4 ql[4] = {ld16_a2(blk + 64 * h), ld16_a2(blk + 64 * h + 16), ld16_a2(blk + 64 * h + 32),
                         ld16_a2(blk + 64 * h + 48)};
    const uint4 qh[2] = {ld16_a2(blk + 128 + 32 * h), ld16_a2(blk + 128 + 32 * h + 16)};
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192 + 8 * h);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int lg = 0; lg < 4; ++lg) {  // l = 8 lg .. 8 lg + 7
        const float a = d * float(sc[2 * j + (lg >> 1)]);
        const int lw = (32 * (j & 1) + 8 * lg) / 4;  // word index into ql (16 words)
        const uint32_t l0 = word(ql[lw >> 2], lw & 3), l1 = word(ql[(lw + 1) >> 2], (lw + 1) & 3);
        const int hw = 2 * lg;  // word index into qh (8 words)
        const uint32_t h0 = word(qh[hw >> 2], hw & 3), h1 = word(qh[(hw + 1) >> 2], (hw + 1) & 3);
        const int ls = 4 * (j >> 1), hs = 2 * j;
        float v[8];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          v[i] = a * float(int(((l0 >> (8 * i + ls)) & 15) | (((h0 >> (8 * i + hs)) & 3) << 4)) - 32);
          v[4 + i] = a * float(int(((l1 >> (8 * i + ls)) & 15) | (((h1 >> (8 * i + hs)) & 3) << 4)) - 32);
        }
        emit(128 * c + 32 * j + 8 * lg, v);
      }
    }
  }
};

// FP4 (E2M1, bit 3 sign) -> float: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
__device__ __forceinline__ float e2m1_value(int q) {
  const int c = q & 7;
  const float m = c < 2 ? 0.5f * float(c) : float(2 + (c & 1)) * __int_as_float((125 + (c >> 1)) << 23);
  return q & 8 ? -m : m;
}
__device__ __forceinline__ float e4m3_value(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(b), __NV_E4M3)));
}

template <>
struct RowDecoder<Type::NVFP4> {  // 9 bytes: E4M3 d, qs[8] (element 2j low nibble); times Linear::scale
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 9 * c;
    const float d = e4m3_value(blk[0]);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float v[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint8_t q = blk[1 + 4 * h + i];
        v[2 * i] = e2m1_value(q & 15) * d;
        v[2 * i + 1] = e2m1_value(q >> 4) * d;
      }
      emit(16 * c + 8 * h, v);
    }
  }
};

template <>
struct RowDecoder<Type::MXFP4> {  // 17 bytes: E8M0 e, qs[16] (GGUF pairing j / j + 16)
  template <typename Emit>
  static __device__ __forceinline__ void chunk(const uint8_t* row, int64_t c, Emit& emit) {
    const uint8_t* blk = row + 17 * c;
    const float d = blk[0] == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(uint32_t(blk[0]) << 23);
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
      w[i] = uint32_t(blk[1 + 4 * i]) | uint32_t(blk[2 + 4 * i]) << 8 | uint32_t(blk[3 + 4 * i]) << 16 |
             uint32_t(blk[4 + 4 * i]) << 24;
    emit_nibbles32(make_uint4(w[0], w[1], w[2], w[3]), 32 * c, [d](int q, int) { return e2m1_value(q) * d; }, emit);
  }
};

template <Type T>
using TypeTag = std::integral_constant<Type, T>;

// Calls fn(TypeTag<T>{}) for a runtime type, or returns false when the type has no
// device decoder. The one runtime -> compile-time type ladder of the CUDA backend.
template <typename Fn>
bool dispatch_type(Type t, Fn&& fn) {
  switch (t) {
    case Type::F32: fn(TypeTag<Type::F32>{}); return true;
    case Type::F16: fn(TypeTag<Type::F16>{}); return true;
    case Type::BF16: fn(TypeTag<Type::BF16>{}); return true;
    case Type::Q4_0: fn(TypeTag<Type::Q4_0>{}); return true;
    case Type::Q4_1: fn(TypeTag<Type::Q4_1>{}); return true;
    case Type::Q5_0: fn(TypeTag<Type::Q5_0>{}); return true;
    case Type::Q8_0: fn(TypeTag<Type::Q8_0>{}); return true;
    case Type::Q4_K: fn(TypeTag<Type::Q4_K>{}); return true;
    case Type::Q6_K: fn(TypeTag<Type::Q6_K>{}); return true;
    case Type::NVFP4: fn(TypeTag<Type::NVFP4>{}); return true;  // without Linear::scale (linear_fp4 applies it)
    case Type::MXFP4: fn(TypeTag<Type::MXFP4>{}); return true;
    default: return false;
  }
}

// Elements per chunk of a type (0 when the type has no device decoder).
inline int chunk_elems(Type t) {
  int n = 0;
  dispatch_type(t, [&](auto tag) { n = Chunk<decltype(tag)::value>::kElems; });
  return n;
}

inline int chunk_align(Type t) {
  int n = 0;
  dispatch_type(t, [&](auto tag) { n = Chunk<decltype(tag)::value>::kAlign; });
  return n;
}

}  // namespace ember::cuda::qdev
