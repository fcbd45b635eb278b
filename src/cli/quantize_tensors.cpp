// ember quantize: one module's weight -> its output tensors (quantize.h, docs/quant.md).
//   nvfp4: weight_packed U8 [N, K/2] (element 2j in the low nibble of byte j),
//          weight_scale F8_E4M3 [N, K/16], weight_global_scale F32 [1] (a divisor)
//   mxfp4: weight_packed U8 [N, K/2] (same pairing), weight_scale U8 [N, K/32] (E8M0)
//   bf16:  weight BF16 [N, K]
// plus, with a rank, svdquant_lora_a BF16 [r, K] and svdquant_lora_b BF16 [N, r].
#include <cstring>
#include <mutex>

#include "cli/quantize.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace ember::cli::quantize {
namespace {

namespace st = safetensors;

Status add_tensor(st::Writer& w, std::mutex& mu, std::string name, st::Dtype dtype, std::vector<int64_t> shape,
                  std::vector<uint8_t> bytes) {
  std::lock_guard<std::mutex> lock(mu);
  return w.add(std::move(name), dtype, std::move(shape), std::move(bytes));
}

// ember's NVFP4 blocks (9 bytes: scale, 8 code bytes) -> packed codes and scales.
void split_nvfp4(const quant::Fp4Matrix& q, std::vector<uint8_t>& packed, std::vector<uint8_t>& scales) {
  const int64_t n_blocks = q.n * q.k / quant::kQK_NV;
  const auto* b = reinterpret_cast<const quant::block_nvfp4*>(q.blocks.data());
  packed.resize(size_t(q.n * q.k / 2));
  scales.resize(size_t(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i) {
    scales[size_t(i)] = b[i].d;
    std::memcpy(&packed[size_t(i * quant::kQK_NV / 2)], b[i].qs, quant::kQK_NV / 2);
  }
}

// ggml MXFP4 blocks pair element j with j + 16; the HF layout pairs 2j with 2j + 1.
void split_mxfp4(const quant::Fp4Matrix& q, std::vector<uint8_t>& packed, std::vector<uint8_t>& scales) {
  const int64_t n_blocks = q.n * q.k / quant::kQK;
  const auto* b = reinterpret_cast<const quant::block_mxfp4*>(q.blocks.data());
  packed.resize(size_t(q.n * q.k / 2));
  scales.resize(size_t(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i) {
    scales[size_t(i)] = b[i].e;
    uint8_t codes[quant::kQK];
    for (int j = 0; j < quant::kQK / 2; ++j) {
      codes[j] = b[i].qs[j] & 0x0f;
      codes[j + quant::kQK / 2] = b[i].qs[j] >> 4;
    }
    uint8_t* dst = &packed[size_t(i * quant::kQK / 2)];
    for (int j = 0; j < quant::kQK / 2; ++j) dst[j] = uint8_t(codes[2 * j] | (codes[2 * j + 1] << 4));
  }
}

Expected<ModuleResult> write_fp4(const Module& m, const QuantizeParams& p, const std::vector<float>& w,
                                 st::Writer& out, std::mutex& mu) {
  const int64_t n = m.linear->n_out, k = m.linear->n_in;
  const quant::Type type = p.scheme == Scheme::nvfp4 ? quant::Type::NVFP4 : quant::Type::MXFP4;
  const int64_t rank = std::min<int64_t>(p.rank, std::min(n, k) / 16 * 16);
  auto q = quant::quantize_fp4(w.data(), n, k, type, rank, p.method, m.input_scale.empty() ? nullptr : m.input_scale.data());
  if (!q) return Status(q.status().kind(), fmt::format("{}: {}", m.name, q.status().message()));
  std::vector<uint8_t> packed, scales;
  if (type == quant::Type::NVFP4) split_nvfp4(*q, packed, scales);
  else split_mxfp4(*q, packed, scales);
  const int64_t group = type == quant::Type::NVFP4 ? quant::kQK_NV : quant::kQK;
  EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".weight_packed", st::Dtype::U8, {n, k / 2}, std::move(packed)));
  EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".weight_scale",
                                   type == quant::Type::NVFP4 ? st::Dtype::F8_E4M3 : st::Dtype::U8, {n, k / group},
                                   std::move(scales)));
  if (type == quant::Type::NVFP4) {
    const float divisor = 1.0f / q->global_scale;  // compressed-tensors divides by it
    std::vector<uint8_t> g(4);
    std::memcpy(g.data(), &divisor, 4);
    EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".weight_global_scale", st::Dtype::F32, {1}, std::move(g)));
  }
  if (q->rank > 0) {
    EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".svdquant_lora_a", st::Dtype::BF16, {q->rank, k},
                                     to_bf16_bytes(q->a.data(), q->rank * k)));
    EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".svdquant_lora_b", st::Dtype::BF16, {n, q->rank},
                                     to_bf16_bytes(q->b.data(), n * q->rank)));
  }
  return ModuleResult{q->snr_db_quantized, q->snr_db_compensated, q->rank, q->weighted_snr_db_quantized,
                      q->weighted_snr_db_compensated};
}

}  // namespace

std::vector<uint8_t> to_bf16_bytes(const float* x, int64_t n) {
  std::vector<uint8_t> out(size_t(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(x[i]);
    std::memcpy(&out[size_t(i) * 2], &h, 2);
  }
  return out;
}

std::vector<float> module_weight_f32(const Module& m) {
  const model::Linear& l = *m.linear;
  std::vector<float> w(size_t(l.n_out * l.n_in));
  for (int64_t r = 0; r < l.n_out; ++r) {
    int64_t src = r;
    if (m.unpermute_heads > 0) {  // HF row j·(hd/2) + i of a head was GGUF row 2i + j
      const int64_t hd = l.n_out / m.unpermute_heads, head = r / hd, h = r % hd;
      src = head * hd + 2 * (h % (hd / 2)) + h / (hd / 2);
    }
    quant::dequantize_row(l.type, l.row(src), &w[size_t(r * l.n_in)], l.n_in);
  }
  return w;
}

Expected<ModuleResult> quantize_module(const Module& m, const QuantizeParams& p, st::Writer& out, std::mutex& mu) {
  const std::vector<float> w = module_weight_f32(m);
  if (m.quantize && p.scheme != Scheme::bf16) return write_fp4(m, p, w, out, mu);
  const int64_t n = int64_t(w.size());
  std::vector<uint8_t> bytes = to_bf16_bytes(w.data(), n);
  std::vector<float> back(w.size());
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, &bytes[size_t(i) * 2], 2);
    back[size_t(i)] = bf16_to_fp32(h);
  }
  const double snr = quant::snr_db(w.data(), back.data(), n);
  EMBER_RETURN_IF_ERROR(add_tensor(out, mu, m.name + ".weight", st::Dtype::BF16, {m.linear->n_out, m.linear->n_in},
                                   std::move(bytes)));
  return ModuleResult{snr, snr, 0, 0, 0};
}

}  // namespace ember::cli::quantize
