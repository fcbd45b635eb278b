#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/vec_dot.h"

namespace ember::cpu {

namespace {

// Tiles for M > 1: a block of weight rows stays in L1/L2 while it is dotted with a
// tile of activation rows that stays in L2.
constexpr int64_t kRowBlock = 16;
constexpr int64_t kTokenTile = 64;
// Below this many activation elements, quantizing them is not worth a parallel_for.
constexpr int64_t kParallelQuantizeMin = 1 << 16;
// Below this much work (weight bytes x tokens) the caller runs the matmul alone: a
// parallel_for round trip (condition-variable wake-up) costs ~5 us, as long as
// streaming ~100-200 KB of weights on one core.
constexpr int64_t kParallelMinBytes = int64_t(256) << 10;

struct ActivationRows {
  const uint8_t* data;
  const uint8_t* residual;  // null unless precise: the 8-bit quantization of x - data
  int64_t stride;  // bytes between rows
};

// Writes x - dequantize(q) for one activation row of type t into r.
void residual_row(quant::Type t, const float* x, const uint8_t* q, float* r, int64_t n) {
  using namespace quant;
  if (t == Type::Q8_K) {
    const auto* b = reinterpret_cast<const block_q8_k*>(q);
    for (int64_t i = 0; i < n; ++i) r[i] = x[i] - b[i / kQK_K].d * b[i / kQK_K].qs[i % kQK_K];
    return;
  }
  const int64_t bytes = t == Type::Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* block = q + (i / kQK) * bytes;
    uint16_t d;
    std::memcpy(&d, block, 2);
    const auto* qs = reinterpret_cast<const int8_t*>(block + bytes - kQK);
    r[i] = x[i] - fp16_to_fp32(d) * qs[i % kQK];
  }
}

// Q8_1 carries s = sum of the block for the weight's min term, rounded to fp16. Set
// the residual's s so that the two add up to the exact sum.
void fix_q8_1_sums(const float* x, const uint8_t* hi, uint8_t* lo, int64_t n) {
  auto* h = reinterpret_cast<const quant::block_q8_1*>(hi);
  auto* l = reinterpret_cast<quant::block_q8_1*>(lo);
  for (int64_t b = 0; b < n / quant::kQK; ++b) {
    double sum = 0.0;
    for (int i = 0; i < quant::kQK; ++i) sum += x[b * quant::kQK + i];
    l[b].s = fp32_to_fp16(float(sum - fp16_to_fp32(h[b].s)));
  }
}

void quantize_row(quant::Type t, const float* x, uint8_t* hi, uint8_t* lo, int64_t n) {
  quant::quantize_activation(t, x, hi, n);
  if (lo == nullptr) return;
  thread_local std::vector<float> r;
  r.resize(size_t(n));
  residual_row(t, x, hi, r.data(), n);
  quant::quantize_activation(t, r.data(), lo, n);
  if (t == quant::Type::Q8_1) fix_q8_1_sums(x, hi, lo, n);
}

// Quantizes every activation row to the weight's dot type into a reused buffer (F32
// weights use x as is).
ActivationRows prepare_activations(const MatmulParams& p, quant::Type act_type, ThreadPool& pool) {
  if (act_type == quant::Type::F32)
    return {reinterpret_cast<const uint8_t*>(p.x), nullptr, p.n_in * int64_t(sizeof(float))};
  const auto row = quant::row_bytes(act_type, p.n_in);
  EMBER_CHECK(row.has_value());
  thread_local std::vector<uint8_t> buffer, residual;
  const size_t need = size_t(*row * p.n_tokens);
  if (buffer.size() < need) buffer.resize(need);
  if (!p.fast_activations && residual.size() < need) residual.resize(need);
  uint8_t* out = buffer.data();
  uint8_t* lo = p.fast_activations ? nullptr : residual.data();
  const int64_t stride = *row;
  auto quantize_rows = [&](int64_t begin, int64_t end, int) {
    for (int64_t m = begin; m < end; ++m)
      quantize_row(act_type, p.x + m * p.n_in, out + m * stride, lo ? lo + m * stride : nullptr, p.n_in);
  };
  if (p.n_tokens > 1 && p.n_tokens * p.n_in >= kParallelQuantizeMin)
    pool.parallel_for(p.n_tokens, quantize_rows);
  else
    quantize_rows(0, p.n_tokens, 0);
  return {out, lo, stride};
}

// Output rows [row_begin, row_end) for every token.
void matmul_rows(const MatmulParams& p, quant::VecDotFn dot, ActivationRows act,
                 int64_t row_begin, int64_t row_end) {
  const auto* w = static_cast<const uint8_t*>(p.w);
  auto dot2 = [&](const uint8_t* w_row, int64_t m) {
    const int64_t off = m * act.stride;
    const float hi = dot(w_row, act.data + off, p.n_in);
    return act.residual ? hi + dot(w_row, act.residual + off, p.n_in) : hi;
  };
  if (p.n_tokens == 1) {
    for (int64_t r = row_begin; r < row_end; ++r) p.y[r] = dot2(w + r * p.w_row_bytes, 0);
    return;
  }
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRowBlock) {
    const int64_t r1 = std::min(row_end, r0 + kRowBlock);
    for (int64_t m0 = 0; m0 < p.n_tokens; m0 += kTokenTile) {
      const int64_t m1 = std::min(p.n_tokens, m0 + kTokenTile);
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* w_row = w + r * p.w_row_bytes;
        for (int64_t m = m0; m < m1; ++m)
          p.y[m * p.n_out + r] = dot2(w_row, m);
      }
    }
  }
}

}  // namespace

void matmul(const MatmulParams& p, ThreadPool& pool) {
  EMBER_CHECK(p.n_in % quant::traits(p.w_type).block_size == 0);
  EMBER_CHECK(p.n_out >= 0 && p.n_tokens >= 0);
  if (p.n_out == 0 || p.n_tokens == 0) return;
  const quant::Type act_type = quant::vec_dot_type(p.w_type);
  const quant::VecDotFn dot = quant::vec_dot_fn(p.w_type);
  const ActivationRows act = prepare_activations(p, act_type, pool);
  const int64_t work = p.w_row_bytes * p.n_out * p.n_tokens;
  if (pool.size() == 1 || p.n_out == 1 || work < kParallelMinBytes) {
    matmul_rows(p, dot, act, 0, p.n_out);
    return;
  }
  pool.parallel_for(p.n_out, [&](int64_t begin, int64_t end, int) {
    matmul_rows(p, dot, act, begin, end);
  });
}

}  // namespace ember::cpu
