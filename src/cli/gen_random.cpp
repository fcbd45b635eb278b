// ember gen-random: writes a GGUF model of a real architecture's shape with random
// weights (for benchmarks: no real 8B model is available where the GPU is). Weights are
// N(0, 0.02) (norm scales 1), quantized row by row on every core; the tokenizer is a
// byte-level "gpt2" vocabulary of the right size with a few dummy merges.
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/thread_pool.h"
#include "formats/gguf/writer.h"
#include "core/half.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember::cli {

namespace {

using quant::Type;

struct Shape {
  const char* name;
  const char* arch;
  int n_layers, n_embd, n_ff, n_heads, n_kv_heads, head_dim, n_vocab;
  float rope_base, eps;
  int n_ctx;
  bool tied, qk_norm;
  const char* pre;  // tokenizer.ggml.pre
  int n_experts = 0, n_experts_used = 0, n_ff_exp = 0;  // mixture of experts (every layer); 0: dense
};

// Shapes of the published configs (config.json of each model).
constexpr std::array<Shape, 8> kShapes = {{
    {"llama3-8b", "llama", 32, 4096, 14336, 32, 8, 128, 128256, 500000.0f, 1e-5f, 8192, false, false, "llama-bpe"},
    {"qwen3-8b", "qwen3", 36, 4096, 12288, 32, 8, 128, 151936, 1000000.0f, 1e-6f, 40960, false, true, "qwen2"},
    {"mistral-7b", "llama", 32, 4096, 14336, 32, 8, 128, 32768, 1000000.0f, 1e-5f, 32768, false, false, "default"},
    {"llama3-1b", "llama", 16, 2048, 8192, 32, 8, 64, 128256, 500000.0f, 1e-5f, 8192, true, false, "llama-bpe"},
    // Mixture of experts: 3-D blk.N.ffn_{gate,up,down}_exps tensors + an F32 ffn_gate_inp router.
    {"qwen3-30b-a3b", "qwen3moe", 48, 2048, 6144, 32, 4, 128, 151936, 1000000.0f, 1e-6f, 40960, false, true, "qwen2",
     128, 8, 768},
    {"mixtral-8x7b", "llama", 32, 4096, 14336, 32, 8, 128, 32000, 1000000.0f, 1e-5f, 32768, false, false, "default",
     8, 2, 14336},
    // Tiny MoE shapes for tests (seconds to write, a few MB).
    {"qwen3-moe-tiny", "qwen3moe", 2, 256, 512, 4, 2, 64, 1024, 1000000.0f, 1e-6f, 4096, false, true, "qwen2", 8, 2,
     256},
    {"mixtral-tiny", "llama", 2, 256, 512, 4, 2, 64, 1024, 1000000.0f, 1e-5f, 4096, false, false, "default", 4, 2, 512},
}};

struct GenOptions {
  std::string shape = "llama3-8b";
  std::string type = "q4_k_m";
  std::string out;
  uint64_t seed = 1;
  int layers = 0;  // 0: the shape's
  int threads = 0;
};

// llama.cpp's Q4_K_M rule for attn_v / ffn_down: more bits in the first and last eighth
// of the layers and in every third layer between.
bool use_more_bits(int il, int n_layers) {
  return il < n_layers / 8 || il >= 7 * n_layers / 8 || (il - n_layers / 8) % 3 == 2;
}

// `role`: token_embd, output, or the tensor name inside a block (attn_v, ffn_down, ...).
Type tensor_type(const std::string& ftype, const std::string& role, int il, int n_layers) {
  if (role == "ffn_gate_inp") return Type::F32;  // the router stays F32, as llama.cpp keeps it
  if (ftype == "f16") return Type::F16;
  if (ftype == "bf16") return Type::BF16;
  if (ftype == "q8_0") return Type::Q8_0;
  // q4_k_m
  if (role == "output") return Type::Q6_K;
  if ((role == "attn_v" || role == "ffn_down" || role == "ffn_down_exps") && use_more_bits(il, n_layers))
    return Type::Q6_K;
  return Type::Q4_K;
}

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest map to 256+.
std::string byte_token(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  int cp = b;
  if (!printable) {
    int next = 256;
    for (int c = 0; c < b; ++c)
      if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) ++next;
    cp = next;
  }
  std::string s;
  if (cp < 0x80) s.push_back(char(cp));
  else {
    s.push_back(char(0xC0 | (cp >> 6)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  }
  return s;
}

// A byte-level BPE vocabulary of exactly n tokens: 256 bytes, letter pairs and
// "Ġ"+letter made by merges, fillers, and three control tokens at the end.
Status add_tokenizer(gguf::Writer& w, const Shape& s, int n) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_token(b));
  const std::string space = byte_token(' ');
  for (char a = 'a'; a <= 'z'; ++a) {
    merges.push_back(space + " " + std::string(1, a));
    tokens.push_back(space + std::string(1, a));
    for (char b = 'a'; b <= 'z'; ++b) {
      merges.push_back(std::string(1, a) + " " + std::string(1, b));
      tokens.push_back(std::string(1, a) + std::string(1, b));
    }
  }
  const std::array<std::string, 3> specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"};
  if (n < int(tokens.size() + specials.size()))
    return make_error(ErrorKind::invalid_argument, "gen-random: vocabulary of {} is too small", n);
  while (int(tokens.size()) < n - int(specials.size())) tokens.push_back(fmt::format("<unused_{}>", tokens.size()));
  types.assign(tokens.size(), 1);  // normal
  for (const auto& sp : specials) {
    tokens.push_back(sp);
    types.push_back(3);  // control
  }
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.model", gguf::val::string("gpt2")));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.pre", gguf::val::string(s.pre)));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.tokens", gguf::val::strings(tokens)));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.token_type", gguf::val::i32s(types)));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.merges", gguf::val::strings(merges)));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.bos_token_id", gguf::val::u32(uint32_t(n - 3))));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.eos_token_id", gguf::val::u32(uint32_t(n - 2))));
  EMBER_RETURN_IF_ERROR(w.add("tokenizer.ggml.eot_token_id", gguf::val::u32(uint32_t(n - 1))));
  return w.add("tokenizer.ggml.add_bos_token", gguf::val::boolean(true));
}

Status add_metadata(gguf::Writer& w, const Shape& s, int n_layers, const std::string& ftype) {
  using namespace gguf::val;
  const std::string a = s.arch;
  EMBER_RETURN_IF_ERROR(w.add("general.architecture", string(a)));
  EMBER_RETURN_IF_ERROR(w.add("general.name", string(fmt::format("random {} {}", s.name, ftype))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".block_count", u32(uint32_t(n_layers))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".context_length", u32(uint32_t(s.n_ctx))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".embedding_length", u32(uint32_t(s.n_embd))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".feed_forward_length", u32(uint32_t(s.n_ff))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".attention.head_count", u32(uint32_t(s.n_heads))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".attention.head_count_kv", u32(uint32_t(s.n_kv_heads))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".attention.key_length", u32(uint32_t(s.head_dim))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".attention.value_length", u32(uint32_t(s.head_dim))));
  EMBER_RETURN_IF_ERROR(w.add(a + ".attention.layer_norm_rms_epsilon", f32(s.eps)));
  EMBER_RETURN_IF_ERROR(w.add(a + ".rope.freq_base", f32(s.rope_base)));
  if (s.n_experts > 0) {
    EMBER_RETURN_IF_ERROR(w.add(a + ".expert_count", u32(uint32_t(s.n_experts))));
    EMBER_RETURN_IF_ERROR(w.add(a + ".expert_used_count", u32(uint32_t(s.n_experts_used))));
    EMBER_RETURN_IF_ERROR(w.add(a + ".expert_feed_forward_length", u32(uint32_t(s.n_ff_exp))));
  }
  return add_tokenizer(w, s, s.n_vocab);
}

struct TensorPlan {
  std::string name;
  Type type;
  int64_t n_in, n_out;  // n_out == 1 with vector: a norm
  bool vector;
  int64_t n_mat = 1;  // > 1: a 3-D tensor of n_mat [n_out][n_in] matrices (experts)
  int64_t rows() const { return n_out * n_mat; }
};

std::vector<TensorPlan> plan_tensors(const Shape& s, int n_layers, const std::string& ftype) {
  std::vector<TensorPlan> t;
  const int64_t d = s.n_embd, q = int64_t(s.n_heads) * s.head_dim, kv = int64_t(s.n_kv_heads) * s.head_dim;
  t.push_back({"token_embd.weight", tensor_type(ftype, "token_embd", 0, n_layers), d, s.n_vocab, false});
  t.push_back({"output_norm.weight", Type::F32, d, 1, true});
  if (!s.tied) t.push_back({"output.weight", tensor_type(ftype, "output", 0, n_layers), d, s.n_vocab, false});
  for (int il = 0; il < n_layers; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    auto mat = [&](const char* role, int64_t n_in, int64_t n_out) {
      t.push_back({p + role + ".weight", tensor_type(ftype, role, il, n_layers), n_in, n_out, false});
    };
    auto vec = [&](const char* role, int64_t n) { t.push_back({p + role + ".weight", Type::F32, n, 1, true}); };
    vec("attn_norm", d);
    mat("attn_q", d, q);
    mat("attn_k", d, kv);
    mat("attn_v", d, kv);
    mat("attn_output", q, d);
    if (s.qk_norm) {
      vec("attn_q_norm", s.head_dim);
      vec("attn_k_norm", s.head_dim);
    }
    vec("ffn_norm", d);
    if (s.n_experts == 0) {
      mat("ffn_gate", d, s.n_ff);
      mat("ffn_up", d, s.n_ff);
      mat("ffn_down", s.n_ff, d);
      continue;
    }
    auto experts = [&](const char* role, int64_t n_in, int64_t n_out) {
      t.push_back({p + role + ".weight", tensor_type(ftype, role, il, n_layers), n_in, n_out, false, s.n_experts});
    };
    mat("ffn_gate_inp", d, s.n_experts);
    experts("ffn_gate_exps", d, s.n_ff_exp);
    experts("ffn_up_exps", d, s.n_ff_exp);
    experts("ffn_down_exps", s.n_ff_exp, d);
  }
  return t;
}

// splitmix64: a fast, well-mixed generator seeded per (tensor, row), so the output does
// not depend on the number of threads.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), centred.
  float normal() {
    const uint64_t r = next();
    const float sum = float((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
    return (sum - 131070.0f) * (1.0f / 37837.2f);
  }
};


// One-pass min/max quantizers for Q4_K and Q6_K: ~10x faster than quant::quantize_row's
// scale search and accurate enough for random weights (every tensor's first row is
// checked against the source by dequantize_row below).
void fast_q4_k(const float* x, quant::block_q4_k* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float scale[8], min[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float lo = 0, hi = x[32 * j];
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, x[32 * j + l]);
        hi = std::max(hi, x[32 * j + l]);
      }
      scale[j] = std::max(hi - lo, 1e-12f) / 15.0f;
      min[j] = -lo;
      max_scale = std::max(max_scale, scale[j]);
      max_min = std::max(max_min, min[j]);
    }
    b[i].d = fp32_to_fp16(max_scale / 63.0f);
    b[i].dmin = fp32_to_fp16(max_min / 63.0f);
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    uint8_t sc[8], mn[8], q[256];
    for (int j = 0; j < 8; ++j) {
      sc[j] = uint8_t(std::clamp(std::lround(scale[j] / d), 1L, 63L));
      mn[j] = dmin > 0 ? uint8_t(std::clamp(std::lround(min[j] / dmin), 0L, 63L)) : 0;
      const float s = d * sc[j], m = dmin * mn[j];
      for (int l = 0; l < 32; ++l) q[32 * j + l] = uint8_t(std::clamp(std::lround((x[32 * j + l] + m) / s), 0L, 15L));
    }
    for (int j = 0; j < 4; ++j) {
      b[i].scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
      b[i].scales[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
      b[i].scales[j + 8] = uint8_t((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void fast_q6_k(const float* x, quant::block_q6_k* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float scale[16], max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float amax = 0;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
      scale[j] = std::max(amax, 1e-12f) / 31.0f;
      max_scale = std::max(max_scale, scale[j]);
    }
    b[i].d = fp32_to_fp16(max_scale / 127.0f);
    const float d = fp16_to_fp32(b[i].d);
    uint8_t q[256];
    for (int j = 0; j < 16; ++j) {
      b[i].scales[j] = int8_t(std::clamp(std::lround(scale[j] / d), 1L, 127L));
      const float s = d * b[i].scales[j];
      for (int l = 0; l < 16; ++l) q[16 * j + l] = uint8_t(std::clamp(std::lround(x[16 * j + l] / s), -32L, 31L) + 32);
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        b[i].ql[64 * h + l] = uint8_t((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
        b[i].ql[64 * h + l + 32] = uint8_t((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
        b[i].qh[32 * h + l] = uint8_t((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                                      ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize(Type type, const float* x, uint8_t* dst, int64_t n) {
  if (type == Type::Q4_K) return fast_q4_k(x, reinterpret_cast<quant::block_q4_k*>(dst), n / 256);
  if (type == Type::Q6_K) return fast_q6_k(x, reinterpret_cast<quant::block_q6_k*>(dst), n / 256);
  quant::quantize_row(type, x, dst, n);
}

double normalised_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

Status fill_tensor(const TensorPlan& t, size_t index, uint64_t seed, int64_t row_bytes, std::vector<uint8_t>& out,
                   ThreadPool& pool) {
  if (t.vector) {  // norm scales: 1
    const std::vector<float> ones(size_t(t.n_in), 1.0f);
    std::memcpy(out.data(), ones.data(), out.size());
    return {};
  }
  constexpr float kSigma = 0.02f;
  auto make_row = [&](int64_t r, std::vector<float>& row) {
    Rng rng{seed * 0x2545F4914F6CDD1Dull ^ (uint64_t(index) << 40) ^ uint64_t(r)};
    for (auto& v : row) v = kSigma * rng.normal();
  };
  pool.parallel_for(t.rows(), [&](int64_t begin, int64_t end, int) {
    std::vector<float> row(size_t(t.n_in));
    for (int64_t r = begin; r < end; ++r) {
      make_row(r, row);
      quantize(t.type, row.data(), out.data() + size_t(r) * size_t(row_bytes), t.n_in);
    }
  });
  std::vector<float> row(size_t(t.n_in)), back(size_t(t.n_in));
  make_row(0, row);
  quant::dequantize_row(t.type, out.data(), back.data(), t.n_in);
  const double err = normalised_error(back, row);
  return err < 0.15 ? Status()
                    : make_error(ErrorKind::internal, "gen-random: {} ({}) row 0 quantized with error {:.3f}", t.name,
                                 quant::type_name(t.type), err);
}

int gen_random(const GenOptions& o) {
  const auto* shape = std::find_if(kShapes.begin(), kShapes.end(), [&](const Shape& s) { return o.shape == s.name; });
  if (shape == kShapes.end())
    return report(make_error(ErrorKind::invalid_argument, "gen-random: unknown shape '{}'", o.shape));
  const int n_layers = o.layers > 0 ? o.layers : shape->n_layers;
  ThreadPool::set_default_threads(o.threads);
  ThreadPool& pool = ThreadPool::global();
  const auto t0 = std::chrono::steady_clock::now();

  gguf::Writer w;
  if (Status st = add_metadata(w, *shape, n_layers, o.type); !st.ok()) return report(st);
  const std::vector<TensorPlan> plan = plan_tensors(*shape, n_layers, o.type);
  for (const TensorPlan& t : plan) {
    std::vector<int64_t> ne = t.vector      ? std::vector<int64_t>{t.n_in}
                              : t.n_mat > 1 ? std::vector<int64_t>{t.n_in, t.n_out, t.n_mat}
                                            : std::vector<int64_t>{t.n_in, t.n_out};
    if (Status st = w.add_tensor(t.name, t.type, ne); !st.ok()) return report(st);
  }
  if (Status st = w.create(o.out); !st.ok()) return report(st);
  std::vector<uint8_t> buffer;
  uint64_t total = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& pt = w.tensors()[i];
    buffer.resize(size_t(pt.n_bytes));
    if (Status st = fill_tensor(plan[i], i, o.seed, int64_t(pt.n_bytes) / plan[i].rows(), buffer, pool); !st.ok())
      return report(st);
    if (Status st = w.write_tensor(i, buffer); !st.ok()) return report(st);
    total += pt.n_bytes;
  }
  if (Status st = w.finish(); !st.ok()) return report(st);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr, "wrote {}: {} ({}, {} layers), {} tensors, {:.2f} GB of weights in {:.1f} s ({} threads)\n",
             o.out, shape->name, o.type, n_layers, plan.size(), double(total) / 1e9, s, pool.size());
  return kExitOk;
}

}  // namespace

void register_gen_random(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GenOptions>();
  CLI::App* sub = app.add_subcommand("gen-random", "write a random-weight GGUF model of a real shape (benchmarks)");
  std::vector<std::string> shapes;
  for (const Shape& s : kShapes) shapes.push_back(s.name);
  sub->add_option("--shape", o->shape, "model shape")->check(CLI::IsMember(shapes));
  sub->add_option("--type", o->type, "weight type (q4_k_m: llama.cpp's Q4_K/Q6_K mix)")
      ->check(CLI::IsMember({"f16", "bf16", "q8_0", "q4_k_m"}));
  sub->add_option("-o,--output", o->out, "output GGUF file")->required();
  sub->add_option("--seed", o->seed, "random seed");
  sub->add_option("--layers", o->layers, "number of layers (default: the shape's)")->check(CLI::Range(1, 1024));
  sub->add_option("-t,--threads", o->threads, "threads (0 = all cores)")->check(CLI::Range(0, 1024));
  sub->callback([o, &exit_code] { exit_code = gen_random(*o); });
}

}  // namespace ember::cli
