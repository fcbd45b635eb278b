// ember bench: prompt-processing (pp) and generation (tg) throughput in the style of
// llama-bench. pp N: one forward over N tokens from an empty context; tg N: N decode
// steps of one token after a short prompt. Reports tokens/s ± stddev over r runs, the
// weight bandwidth of tg (bytes of all weights read per token, the embedding table
// excluded, routed experts at their average active share, over the time per token) and
// the matrix TFLOP/s of pp (2 · params · tokens).
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/common.h"
#ifdef EMBER_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#include "model/gpu/gpu_decoder.h"
#endif

namespace ember::cli {

namespace {

constexpr int kTgPrompt = 8;  // tokens of the short prompt before a tg run

struct BenchOptions {
  ModelOptions model;
  std::string prompts = "512";
  std::string gens = "128";
  int reps = 3;
  int ubatch = 2048;  // a 2048-token prompt in one step: each step dequantizes the weights again
  double peak_gbps = 3030.0;  // H100 80GB HBM3, measured device-to-device copy
  bool json = false;
};

struct Result {
  std::string test;  // "pp512", "tg128"
  int n_prompt = 0, n_gen = 0;
  std::vector<double> samples;  // tokens/s per run
  double mean = 0, stddev = 0;
  double gbps = 0, tflops = 0;
};

struct ModelStats {
  uint64_t read_per_token = 0;  // bytes of weights one decode step reads
  uint64_t params = 0;          // matrix elements the forward multiplies (lm_head included)
};

// Mixture-of-experts layers count their router and shared expert in full and the routed
// experts at the average share one token uses (n_experts_used / n_experts).
ModelStats model_stats(const model::Model& m) {
  const model::Weights& w = m.weights;
  ModelStats s;
  auto add = [&s](const model::Linear& l, double share = 1.0) {
    if (!l.present()) return;
    s.read_per_token += uint64_t(share * double(uint64_t(l.row_bytes) * uint64_t(l.n_out) + l.bias.size() * 4));
    s.params += uint64_t(share * double(uint64_t(l.n_in) * uint64_t(l.n_out)));
  };
  auto vec = [&s](const std::vector<float>& v) { s.read_per_token += v.size() * 4; };
  add(w.output);  // the token table itself when tied (the lm_head reads all of it)
  vec(w.output_norm);
  const double expert_share =
      m.spec.moe.n_experts > 0 ? double(m.spec.moe.n_experts_used) / double(m.spec.moe.n_experts) : 0.0;
  for (const auto& l : w.layers) {
    for (const model::Linear* x : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) add(*x);
    for (const auto* v : {&l.attn_norm, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffn_norm})
      vec(*v);
    const model::MoeWeights& e = l.moe;
    for (const model::Linear* x : {&e.router, &e.shexp_gate, &e.shexp_up, &e.shexp_down, &e.shexp_gate_inp}) add(*x);
    for (const auto* experts : {&e.gate, &e.up, &e.down})
      for (const model::Linear& x : *experts) add(x, expert_share);
  }
  return s;
}

Expected<std::vector<int>> parse_list(const std::string& s, const char* what) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      const int v = std::stoi(item);
      if (v < 0 || v > (1 << 20)) throw std::out_of_range(item);
      if (v > 0) out.push_back(v);  // 0: skip this kind of test
    } catch (const std::exception&) {
      return make_error(ErrorKind::invalid_argument, "bench: {} '{}' is not a token count in [0, 2^20]", what, item);
    }
  }
  return out;
}

void finish(Result& r) {
  double sum = 0;
  for (double v : r.samples) sum += v;
  r.mean = sum / double(r.samples.size());
  double var = 0;
  for (double v : r.samples) var += (v - r.mean) * (v - r.mean);
  r.stddev = r.samples.size() > 1 ? std::sqrt(var / double(r.samples.size() - 1)) : 0.0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class Runner {
 public:
  Runner(model::Decoder& dec, int n_vocab, uint32_t seed) : dec_(dec), rng_(seed), id_(0, n_vocab - 1) {}

  std::vector<int32_t> tokens(int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = id_(rng_);
    return t;
  }

  Expected<double> pp(int n) {  // tokens/s of one prompt from position 0
    const auto prompt = tokens(n);
    const auto t0 = std::chrono::steady_clock::now();
    EMBER_RETURN_IF_ERROR(dec_.forward(prompt, 0, false, logits_));
    return double(n) / seconds_since(t0);
  }

  Expected<double> tg(int n) {  // tokens/s of n single-token steps after a short prompt
    EMBER_RETURN_IF_ERROR(dec_.forward(tokens(kTgPrompt), 0, false, logits_));
    const auto ids = tokens(n);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
      EMBER_RETURN_IF_ERROR(dec_.forward(std::span<const int32_t>(&ids[size_t(i)], 1), kTgPrompt + i, false, logits_));
    return double(n) / seconds_since(t0);
  }

 private:
  model::Decoder& dec_;
  std::mt19937 rng_;
  std::uniform_int_distribution<int32_t> id_;
  std::vector<float> logits_;
};

Expected<std::unique_ptr<model::Decoder>> bench_decoder(const model::Model& m, const BenchOptions& o,
                                                        std::string& backend) {
#ifdef EMBER_HAVE_CUDA
  if (!o.model.cpu && (o.model.device >= 0 || cuda::device_available())) {
    model::gpu::GpuDecoderOptions g;
    g.device = std::max(o.model.device, 0);
    g.n_ctx = o.model.ctx_size;
    g.max_batch = o.ubatch;
    auto name = model::gpu::describe_device(g.device);
    if (!name) return name.status();
    fmt::print(stderr, "device: GPU {}\n", *name);
    backend = "CUDA";
    return model::gpu::make_gpu_decoder(m.spec, m.weights, g);
  }
#endif
  backend = "CPU";
  return make_decoder(m, o.model);
}

void print_table(const std::vector<Result>& results, const std::string& name, const model::Model& m,
                 const ModelStats& st, const std::string& backend, const BenchOptions& o) {
  fmt::print("| model | size | params | backend | test | t/s | GB/s | % of {:.2f} TB/s | TFLOP/s |\n",
             o.peak_gbps / 1e3);
  fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Result& r : results) {
    const bool tg = r.n_gen > 0;
    fmt::print("| {} | {:.2f} GiB | {:.2f} B | {} | {} | {:.2f} ± {:.2f} | {} | {} | {} |\n", name,
               double(m.weights.n_bytes) / double(1ull << 30), double(st.params) / 1e9, backend, r.test, r.mean,
               r.stddev, tg ? fmt::format("{:.0f}", r.gbps) : "", tg ? fmt::format("{:.1f}%", 100 * r.gbps / o.peak_gbps) : "",
               tg ? "" : fmt::format("{:.1f}", r.tflops));
  }
}

void print_json(const std::vector<Result>& results, const std::string& name, const model::Model& m,
                const ModelStats& st, const std::string& backend, const BenchOptions& o) {
  nlohmann::json out = nlohmann::json::array();
  for (const Result& r : results) {
    nlohmann::json j;
    j["model"] = name;
    j["arch"] = m.spec.arch;
    j["size_bytes"] = m.weights.n_bytes;
    j["weight_bytes_per_token"] = st.read_per_token;
    j["params"] = st.params;
    j["backend"] = backend;
    j["test"] = r.test;
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["avg_ts"] = r.mean;
    j["stddev_ts"] = r.stddev;
    j["samples_ts"] = r.samples;
    if (r.n_gen > 0) {
      j["gb_per_s"] = r.gbps;
      j["bw_fraction"] = r.gbps / o.peak_gbps;
    } else {
      j["tflop_per_s"] = r.tflops;
    }
    out.push_back(std::move(j));
  }
  fmt::print("{}\n", out.dump(2));
}

int bench(BenchOptions o) {
  auto prompts = parse_list(o.prompts, "-p");
  auto gens = parse_list(o.gens, "-n");
  if (!prompts) return report(prompts.status());
  if (!gens) return report(gens.status());
  int need = 1;
  for (int p : *prompts) need = std::max(need, p);
  for (int n : *gens) need = std::max(need, kTgPrompt + n);
  o.model.ctx_size = std::max(o.model.ctx_size, need);
  auto m = load_model(o.model);
  if (!m) return report(m.status());
  const model::Model& model = **m;
  std::string backend;
  auto dec = bench_decoder(model, o, backend);
  if (!dec) return report(dec.status());
  const ModelStats st = model_stats(model);
  const std::string name = std::filesystem::path(o.model.path).filename().string();
  Runner run(**dec, model.spec.n_vocab, 1234);
  std::vector<Result> results;
  for (int p : *prompts) {
    Result r{fmt::format("pp{}", p), p, 0, {}, 0, 0, 0, 0};
    if (auto w = run.pp(p); !w) return report(w.status());  // warm-up: module load, cuBLAS
    for (int i = 0; i < o.reps; ++i) {
      auto v = run.pp(p);
      if (!v) return report(v.status());
      r.samples.push_back(*v);
    }
    finish(r);
    r.tflops = 2.0 * double(st.params) * r.mean / 1e12;
    results.push_back(r);
  }
  for (int n : *gens) {
    Result r{fmt::format("tg{}", n), 0, n, {}, 0, 0, 0, 0};
    if (auto w = run.tg(std::min(n, 16)); !w) return report(w.status());  // warm-up
    for (int i = 0; i < o.reps; ++i) {
      auto v = run.tg(n);
      if (!v) return report(v.status());
      r.samples.push_back(*v);
    }
    finish(r);
    r.gbps = double(st.read_per_token) * r.mean / 1e9;
    results.push_back(r);
  }
  if (o.json) print_json(results, name, model, st, backend, o);
  else print_table(results, name, model, st, backend, o);
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "measure prompt (pp) and generation (tg) throughput");
  add_model_options(*sub, o->model);
  sub->add_option("-p,--n-prompt", o->prompts, "prompt lengths, comma-separated (pp tests)");
  sub->add_option("-n,--n-gen", o->gens, "generated token counts, comma-separated (tg tests)");
  sub->add_option("-r,--repetitions", o->reps, "runs per test")->check(CLI::Range(1, 1000));
  sub->add_option("-u,--ubatch", o->ubatch, "tokens per device step for prompts (GPU; default 2048, like llama-bench's -b)")
      ->check(CLI::Range(1, 1 << 16));
  sub->add_option("--peak-gbps", o->peak_gbps, "memory bandwidth the GB/s column is compared with")
      ->check(CLI::Range(1.0, 1e6));
  sub->add_flag("--json", o->json, "print JSON instead of a markdown table");
  sub->callback([o, &exit_code] { exit_code = bench(*o); });
}

}  // namespace ember::cli
