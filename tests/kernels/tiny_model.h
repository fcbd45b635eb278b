// A tiny random-weight GGUF model (llama / qwen2 / gemma3 layouts) built in memory, with
// quantized matrices made by quant::quantize_row. For decoder tests on any backend.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "quant/quantize.h"
#include "quant/types.h"
#include "unit/formats/gguf_builder.h"

namespace ember_test {

struct TinyModelConfig {
  std::string arch = "llama";  // llama, qwen2 (q/k/v biases) or gemma3
  int n_layers = 2, n_embd = 256, n_ff = 512, n_heads = 4, n_kv_heads = 2, head_dim = 64, n_vocab = 1000;
  int window = 0, window_pattern = 2;  // gemma3 sliding window
  float rope_base = 10000.0f;
  bool tied = false;   // no output.weight: the lm_head is the token embedding
  bool biases = false;
  ember::quant::Type embd_type = ember::quant::Type::Q8_0;
  ember::quant::Type output_type = ember::quant::Type::Q6_K;
  std::vector<ember::quant::Type> types;  // cycled over the layers' matrices
  int distinct_rows = 0;  // > 0: quantize this many random rows per matrix and repeat them (fast, for benchmarks)
};

struct TinyTensor {
  std::string name;
  std::vector<uint64_t> dims;  // ne0 (contiguous), ne1
  ember::quant::Type type;
  std::vector<uint8_t> data;
};

inline TinyTensor tiny_matrix(std::mt19937& rng, std::string name, int n_in, int n_out, ember::quant::Type type,
                              float sigma, int distinct_rows = 0) {
  std::normal_distribution<float> dist(0.0f, sigma);
  const int64_t rb = *ember::quant::row_bytes(type, n_in);
  TinyTensor t{std::move(name), {uint64_t(n_in), uint64_t(n_out)}, type, std::vector<uint8_t>(size_t(rb * n_out))};
  std::vector<float> row(static_cast<size_t>(n_in));
  const int distinct = distinct_rows > 0 ? std::min(distinct_rows, n_out) : n_out;
  for (int r = 0; r < distinct; ++r) {
    for (auto& v : row) v = dist(rng);
    ember::quant::quantize_row(type, row.data(), t.data.data() + size_t(r) * size_t(rb), n_in);
  }
  for (int r = distinct; r < n_out; ++r)
    std::memcpy(t.data.data() + size_t(r) * size_t(rb), t.data.data() + size_t(r % distinct) * size_t(rb), size_t(rb));
  return t;
}

inline TinyTensor tiny_vector(std::mt19937& rng, std::string name, int n, float mean, float sigma) {
  std::normal_distribution<float> dist(mean, sigma);
  TinyTensor t{std::move(name), {uint64_t(n)}, ember::quant::Type::F32, std::vector<uint8_t>(size_t(n) * 4)};
  for (int i = 0; i < n; ++i) {
    const float v = dist(rng);
    std::memcpy(t.data.data() + size_t(i) * 4, &v, 4);
  }
  return t;
}

inline std::vector<TinyTensor> tiny_tensors(const TinyModelConfig& c, std::mt19937& rng) {
  using ember::quant::Type;
  std::vector<TinyTensor> ts;
  const int q_w = c.n_heads * c.head_dim, kv_w = c.n_kv_heads * c.head_dim;
  ts.push_back(tiny_matrix(rng, "token_embd.weight", c.n_embd, c.n_vocab, c.embd_type, 1.0f, c.distinct_rows));
  ts.push_back(tiny_vector(rng, "output_norm.weight", c.n_embd, 1.0f, 0.2f));
  if (!c.tied)
    ts.push_back(tiny_matrix(rng, "output.weight", c.n_embd, c.n_vocab, c.output_type, 0.5f, c.distinct_rows));
  const std::vector<Type> types = c.types.empty() ? std::vector<Type>{Type::Q4_K} : c.types;
  auto mat = [&](std::string name, int n_in, int n_out, Type type) {  // sigma 1/sqrt(n_in): outputs stay O(1)
    return tiny_matrix(rng, std::move(name), n_in, n_out, type, 1.0f / std::sqrt(float(n_in)), c.distinct_rows);
  };
  size_t ti = 0;
  auto next_type = [&] { return types[ti++ % types.size()]; };
  for (int il = 0; il < c.n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    ts.push_back(tiny_vector(rng, p + "attn_norm.weight", c.n_embd, 1.0f, 0.2f));
    ts.push_back(mat(p + "attn_q.weight", c.n_embd, q_w, next_type()));
    ts.push_back(mat(p + "attn_k.weight", c.n_embd, kv_w, next_type()));
    ts.push_back(mat(p + "attn_v.weight", c.n_embd, kv_w, next_type()));
    if (c.biases) {
      ts.push_back(tiny_vector(rng, p + "attn_q.bias", q_w, 0.0f, 0.5f));
      ts.push_back(tiny_vector(rng, p + "attn_k.bias", kv_w, 0.0f, 0.5f));
      ts.push_back(tiny_vector(rng, p + "attn_v.bias", kv_w, 0.0f, 0.5f));
    }
    ts.push_back(mat(p + "attn_output.weight", q_w, c.n_embd, next_type()));
    if (c.arch == "gemma3") {
      ts.push_back(tiny_vector(rng, p + "attn_q_norm.weight", c.head_dim, 1.0f, 0.2f));
      ts.push_back(tiny_vector(rng, p + "attn_k_norm.weight", c.head_dim, 1.0f, 0.2f));
      ts.push_back(tiny_vector(rng, p + "post_attention_norm.weight", c.n_embd, 1.0f, 0.2f));
      ts.push_back(tiny_vector(rng, p + "post_ffw_norm.weight", c.n_embd, 1.0f, 0.2f));
    }
    ts.push_back(tiny_vector(rng, p + "ffn_norm.weight", c.n_embd, 1.0f, 0.2f));
    ts.push_back(mat(p + "ffn_gate.weight", c.n_embd, c.n_ff, next_type()));
    ts.push_back(mat(p + "ffn_up.weight", c.n_embd, c.n_ff, next_type()));
    ts.push_back(mat(p + "ffn_down.weight", c.n_ff, c.n_embd, next_type()));
  }
  return ts;
}

// The whole file: metadata for the architecture, tensor infos, aligned data.
inline std::vector<uint8_t> build_tiny_gguf(const TinyModelConfig& c, std::mt19937& rng) {
  const std::vector<TinyTensor> ts = tiny_tensors(c, rng);
  const std::string a = c.arch;
  const bool gemma = a == "gemma3";
  GgufBuilder b;
  b.header(3, ts.size(), 11 + (gemma ? 2 : 0));
  b.kv_string("general.architecture", a);
  b.kv_u32(a + ".block_count", uint32_t(c.n_layers));
  b.kv_u32(a + ".embedding_length", uint32_t(c.n_embd));
  b.kv_u32(a + ".feed_forward_length", uint32_t(c.n_ff));
  b.kv_u32(a + ".attention.head_count", uint32_t(c.n_heads));
  b.kv_u32(a + ".attention.head_count_kv", uint32_t(c.n_kv_heads));
  b.kv_u32(a + ".attention.key_length", uint32_t(c.head_dim));
  b.kv_u32(a + ".attention.value_length", uint32_t(c.head_dim));
  b.kv_u32(a + ".context_length", 4096);
  b.kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  b.kv_f32(a + ".rope.freq_base", c.rope_base);
  if (gemma) {
    b.kv_u32(a + ".attention.sliding_window", uint32_t(c.window));
    b.kv_u32(a + ".attention.sliding_window_pattern", uint32_t(c.window_pattern));
  }
  std::vector<uint64_t> offsets;
  uint64_t at = 0;
  for (const TinyTensor& t : ts) {
    at = (at + 31) / 32 * 32;
    offsets.push_back(at);
    at += t.data.size();
  }
  for (size_t i = 0; i < ts.size(); ++i) b.tensor_info(ts[i].name, ts[i].dims, uint32_t(ts[i].type), offsets[i]);
  b.pad_to(32);
  const size_t data_start = b.size();
  for (size_t i = 0; i < ts.size(); ++i) {
    b.zeros(data_start + offsets[i] - b.size());
    b.raw(ts[i].data.data(), ts[i].data.size());
  }
  return std::move(b.bytes);
}

}  // namespace ember_test
