// ggml tensor type ids (as stored in GGUF) and their block geometry.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace ember::quant {

enum class Type : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
  // ember-internal ids (>= kFirstInternalType): never read from or written to GGUF.
  NVFP4 = 1000,
};
inline constexpr uint32_t kFirstInternalType = 1000;

struct TypeTraits {
  Type type;
  std::string_view name;
  int64_t block_size;   // elements per block
  int64_t block_bytes;  // bytes per block
  bool computable;      // ember can dequantize / multiply it on the CPU
};

// Traits of a known GGUF (ggml) type id, or nullopt for an id ember does not know or an
// ember-internal id (NVFP4), which no file may claim.
std::optional<TypeTraits> type_traits(uint32_t type_id);
const TypeTraits& traits(Type type);  // type must be known
std::string_view type_name(Type type);

// Bytes of a row of n elements; nullopt when n is not a multiple of the block size.
std::optional<int64_t> row_bytes(Type type, int64_t n);

}  // namespace ember::quant
