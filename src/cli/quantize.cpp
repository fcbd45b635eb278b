// ember quantize IN OUT --scheme nvfp4|mxfp4|bf16 [--lowrank-rank R] ...: see quantize.h
// and docs/quant.md. Loads IN with the normal loader (so every GGUF quant type and every
// HF dtype is dequantized the same way), plans one job per module, quantizes the jobs on
// the thread pool (one module per thread at a time), then writes the directory.
#include <fmt/core.h>
#include <fnmatch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>

#include "cli/common.h"
#include "cli/quantize.h"
#include "core/thread_pool.h"
#include "formats/hf/config.h"
#include "model/archs/hf.h"

namespace ember::cli {
namespace quantize {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// Modules kept in bf16 unless the user says otherwise (compressed-tensors' usual ignore).
const std::vector<std::string> kDefaultExcludes = {"lm_head"};

// `re:` prefix: a regular expression matched from the start of the name (compressed-tensors'
// convention); otherwise a shell glob over the whole name.
bool matches(const std::string& pattern, const std::string& name) {
  if (pattern.rfind("re:", 0) == 0)
    return std::regex_search(name, std::regex(pattern.substr(3)), std::regex_constants::match_continuous);
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

Status check_spec(const model::ModelSpec& a, const model::ModelSpec& b) {
  const auto differ = [](double x, double y) { return std::fabs(x - y) > 1e-5 * std::max(1.0, std::fabs(x)); };
  const auto scale = [](const model::ModelSpec& s) { return s.attn_scale > 0 ? s.attn_scale : 1.0 / std::sqrt(double(s.layers[0].head_dim)); };
  bool same = a.n_layers == b.n_layers && a.n_embd == b.n_embd && a.n_ff == b.n_ff && a.n_vocab == b.n_vocab &&
              a.act == b.act && a.qk_norm == b.qk_norm && a.post_norms == b.post_norms &&
              a.embed_scale == b.embed_scale && !differ(a.norm_eps, b.norm_eps) && !differ(scale(a), scale(b)) &&
              !differ(a.attn_softcap, b.attn_softcap) && !differ(a.final_softcap, b.final_softcap);
  for (size_t i = 0; same && i < a.layers.size(); ++i) {
    const model::LayerSpec &x = a.layers[i], &y = b.layers[i];
    same = x.n_heads == y.n_heads && x.n_kv_heads == y.n_kv_heads && x.head_dim == y.head_dim &&
           x.window == y.window && !differ(x.rope_base, y.rope_base) && !differ(x.rope_scale, y.rope_scale);
  }
  if (same) return {};
  return make_error(ErrorKind::internal, "quantize: the written config.json describes a different model than the "
                    "input ({} layers, {} embd) - a bug in the config synthesis", b.n_layers, b.n_embd);
}

const model::Linear* linear_for(const model::LayerWeights& l, const std::string& role) {
  if (role == "attn_q") return &l.wq;
  if (role == "attn_k") return &l.wk;
  if (role == "attn_v") return &l.wv;
  if (role == "attn_output") return &l.wo;
  if (role == "ffn_gate") return &l.w_gate;
  if (role == "ffn_up") return &l.w_up;
  if (role == "ffn_down") return &l.w_down;
  return nullptr;
}

const std::vector<float>* norm_for(const model::LayerWeights& l, const std::string& role) {
  if (role == "attn_norm") return &l.attn_norm;
  if (role == "attn_q_norm") return &l.q_norm;
  if (role == "attn_k_norm") return &l.k_norm;
  if (role == "post_attention_norm") return &l.post_attn_norm;
  if (role == "ffn_norm") return &l.ffn_norm;
  if (role == "post_ffw_norm") return &l.post_ffn_norm;
  return nullptr;
}

struct Plan {
  std::vector<Module> modules;
  std::vector<std::pair<std::string, std::vector<float>>> norms;  // HF tensor name -> f32 values
  std::vector<std::string> ignore;                                // Linear modules left in bf16
};

Status add_norm(Plan& p, std::string name, const std::vector<float>& v, bool minus_one) {
  std::vector<float> out = v;
  if (minus_one)  // HF Gemma stores w and applies (1 + w); ember (like GGUF) holds 1 + w
    for (float& x : out) x -= 1.0f;
  p.norms.emplace_back(std::move(name), std::move(out));
  return {};
}

Expected<Plan> plan_modules(const model::Model& m, const model::HfModelSpec& hs, bool from_gguf,
                            const std::vector<std::string>& excludes) {
  Plan p;
  const model::Weights& w = m.weights;
  const bool unpermute = from_gguf && m.spec.rope_style == cpu::RopeStyle::interleaved;
  const auto excluded = [&](const std::string& name) {
    for (const auto& pat : excludes)
      if (matches(pat, name)) return true;
    return false;
  };
  const auto add_linear = [&](std::string name, const model::Linear& l, int il, int heads, const std::string& role) {
    if (l.has_extras())
      return make_error(ErrorKind::unsupported, "quantize: {} is already quantized with extras (global scale / "
                        "low-rank); re-quantizing NVFP4 checkpoints is not supported", l.name);
    Module mod{name, &l, il, !excluded(name) && l.n_in % 32 == 0, heads, calib_input_name(role), {}};
    if (!mod.quantize) p.ignore.push_back(name);
    p.modules.push_back(std::move(mod));
    return Status();
  };
  p.modules.push_back({"model.embed_tokens", &w.token_embd, -1, false, 0, "", {}});  // the lookup stays bf16
  for (int il = 0; il < int(w.layers.size()); ++il) {
    const model::LayerWeights& lw = w.layers[size_t(il)];
    const model::LayerSpec& ls = m.spec.layers[size_t(il)];
    for (const auto& [hf, role] : hs.layer_names) {
      const std::string name = fmt::format("model.layers.{}.{}", il, hf);
      if (const model::Linear* l = linear_for(lw, role)) {
        if (!l->present()) continue;
        const int heads = !unpermute ? 0 : role == "attn_q" ? ls.n_heads : role == "attn_k" ? ls.n_kv_heads : 0;
        EMBER_RETURN_IF_ERROR(add_linear(name, *l, il, heads, role));
      } else if (const std::vector<float>* v = norm_for(lw, role); v && !v->empty()) {
        EMBER_RETURN_IF_ERROR(add_norm(p, name + ".weight", *v, hs.norm_plus_one));
      }
    }
  }
  EMBER_RETURN_IF_ERROR(add_norm(p, "model.norm.weight", w.output_norm, hs.norm_plus_one));
  if (hs.tied_embeddings) {
    if (w.output.data != w.token_embd.data)
      return make_error(ErrorKind::unsupported, "quantize: the config ties lm_head to the embedding but the model has "
                        "its own output weight");
    p.ignore.push_back("lm_head");  // compressed-tensors would otherwise treat the tied head as quantized
  } else {
    EMBER_RETURN_IF_ERROR(add_linear("lm_head", w.output, -1, 0, "output"));
  }
  return p;
}

Expected<model::HfModelSpec> spec_of_config(const json& config, const std::string& out_dir) {
  hf::Config c;
  c.dir = out_dir;
  c.path = (fs::path(out_dir) / "config.json").string();
  c.root = nlohmann::json::parse(config.dump());
  c.text = c.root;
  c.architecture = c.root["architectures"][0].get<std::string>();
  c.model_type = c.root.value("model_type", "");
  return model::spec_from_hf(c);
}

// Per-layer progress and the SNR report.
class Progress {
 public:
  Progress(const std::vector<Module>& modules, int n_layers) : modules_(modules), results_(modules.size()) {
    left_.assign(size_t(n_layers) + 1, 0);
    for (const Module& m : modules) ++left_[slot(m)];
    t0_ = std::chrono::steady_clock::now();
  }
  void done(size_t i, const ModuleResult& r) {
    std::lock_guard<std::mutex> lock(mu_);
    results_[i] = r;
    if (--left_[slot(modules_[i])] > 0 || modules_[i].il < 0) return;
    double before = 0, after = 0;
    int n = 0;
    for (size_t j = 0; j < modules_.size(); ++j)
      if (modules_[j].il == modules_[i].il && modules_[j].quantize) {
        before += results_[j].snr_quantized;
        after += results_[j].snr_compensated;
        ++n;
      }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    fmt::print(stderr, "quantize: layer {:3}/{} done: {} quantized modules, mean weight SNR {:.2f} dB -> {:.2f} dB "
               "({:.1f} s)\n", modules_[i].il + 1, left_.size() - 1, n, n ? before / n : 0.0, n ? after / n : 0.0, s);
  }
  const std::vector<ModuleResult>& results() const { return results_; }

 private:
  size_t slot(const Module& m) const { return m.il < 0 ? left_.size() - 1 : size_t(m.il); }
  const std::vector<Module>& modules_;
  std::vector<ModuleResult> results_;
  std::vector<int> left_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point t0_;
};

Status run_jobs(const std::vector<Module>& modules, const QuantizeParams& params, safetensors::Writer& writer,
                Progress& progress) {
  ThreadPool& pool = ThreadPool::global();
  std::atomic<size_t> next{0};
  std::mutex writer_mu, error_mu;
  Status first_error;
  pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
    for (size_t i; (i = next.fetch_add(1)) < modules.size();) {
      auto r = quantize_module(modules[i], params, writer, writer_mu);
      if (!r) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = r.status();
        next = modules.size();
        return;
      }
      progress.done(i, *r);
    }
  });
  return first_error;
}

json make_report(const Options& o, const Plan& plan, const std::vector<ModuleResult>& results) {
  json modules = json::array();
  double before = 0, after = 0;
  int n = 0;
  for (size_t i = 0; i < plan.modules.size(); ++i) {
    const Module& m = plan.modules[i];
    const ModuleResult& r = results[i];
    modules.push_back({{"name", m.name}, {"layer", m.il}, {"n_out", m.linear->n_out}, {"n_in", m.linear->n_in},
                       {"quantized", m.quantize && o.scheme != "bf16"}, {"rank", r.rank},
                       {"snr_db_quantized", r.snr_quantized}, {"snr_db_compensated", r.snr_compensated}});
    if (!m.input_scale.empty()) {
      modules.back()["weighted_snr_db_quantized"] = r.weighted_snr_quantized;
      modules.back()["weighted_snr_db_compensated"] = r.weighted_snr_compensated;
    }
    if (m.quantize) {
      before += r.snr_quantized;
      after += r.snr_compensated;
      ++n;
    }
  }
  return {{"input", o.in}, {"scheme", o.scheme}, {"lowrank_rank", o.rank}, {"lowrank_method", o.method},
          {"mean_snr_db_quantized", n ? before / n : 0.0}, {"mean_snr_db_compensated", n ? after / n : 0.0},
          {"modules", modules}};
}

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) return make_error(ErrorKind::io, "{}: write failed", path.string());
  return {};
}

Status write_output(const Options& o, const model::Model& m, json config, const Plan& plan, Scheme scheme,
                    safetensors::Writer& writer) {
  for (const auto& [name, v] : plan.norms) {
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    EMBER_RETURN_IF_ERROR(writer.add(name, safetensors::Dtype::F32, {int64_t(v.size())}, std::move(bytes)));
  }
  writer.set_metadata("format", "pt");
  EMBER_RETURN_IF_ERROR(writer.write_dir(o.out, uint64_t(o.max_shard_mb) << 20));
  if (scheme != Scheme::bf16) config["quantization_config"] = quantization_config(scheme, plan.ignore);
  EMBER_RETURN_IF_ERROR(write_text(fs::path(o.out) / "config.json", config.dump(2) + "\n"));
  return write_tokenizer_files(m, o.in, o.out);
}

int run(const Options& o) {
  const Scheme scheme = o.scheme == "mxfp4" ? Scheme::mxfp4 : o.scheme == "bf16" ? Scheme::bf16 : Scheme::nvfp4;
  if (scheme == Scheme::bf16 && o.rank > 0)
    return report(make_error(ErrorKind::invalid_argument, "--lowrank-rank {} needs an FP4 --scheme (nvfp4, mxfp4)", o.rank));
  if (!o.calib.empty() && o.rank == 0)
    return report(make_error(ErrorKind::invalid_argument, "--calib {} only shapes the low-rank term: it needs "
                             "--lowrank-rank", o.calib));
  ThreadPool::set_default_threads(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  auto loaded = model::Model::load(o.in);
  if (!loaded) return report(loaded.status());
  const model::Model& m = **loaded;
  if (m.spec.has_moe())
    return report(make_error(ErrorKind::unsupported, "quantize: {} is a mixture-of-experts model; quantizing experts "
                             "is not supported yet", m.spec.arch));
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return report(make_error(ErrorKind::io, "{}: cannot create the output directory: {}", o.out, ec.message()));
  auto config = make_config(m, o.in);
  if (!config) return report(config.status());
  auto hs = spec_of_config(*config, o.out);
  if (!hs) return report(hs.status());
  if (Status st = check_spec(m.spec, hs->spec); !st.ok()) return report(st);
  std::vector<std::string> excludes = kDefaultExcludes;
  excludes.insert(excludes.end(), o.exclude.begin(), o.exclude.end());
  auto plan = plan_modules(m, *hs, !hf::is_model_dir(o.in), excludes);
  if (!plan) return report(plan.status());
  if (!o.calib.empty())
    if (Status st = calibrate(m, o.calib, o.calib_tokens, plan->modules); !st.ok()) return report(st);
  QuantizeParams params{scheme, o.rank,
                        o.method == "svdquant" ? quant::LowRankScheme::svdquant : quant::LowRankScheme::error_svd};
  fmt::print(stderr, "quantize: {} -> {} ({}{}), {} modules ({} quantized), {} threads\n", o.in, o.out, o.scheme,
             o.rank > 0 ? fmt::format(" + rank {} {}", o.rank, o.method) : "", plan->modules.size(),
             std::count_if(plan->modules.begin(), plan->modules.end(), [&](const Module& x) { return x.quantize && scheme != Scheme::bf16; }),
             ThreadPool::global().size());
  safetensors::Writer writer;
  Progress progress(plan->modules, m.spec.n_layers);
  if (Status st = run_jobs(plan->modules, params, writer, progress); !st.ok()) return report(st);
  if (Status st = write_output(o, m, *config, *plan, scheme, writer); !st.ok()) return report(st);
  const json rep = make_report(o, *plan, progress.results());
  if (!o.report.empty())
    if (Status st = write_text(o.report, rep.dump(2) + "\n"); !st.ok()) return report(st);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr, "quantize: wrote {} ({} tensors, {:.1f} MiB) in {:.1f} s; mean weight SNR {:.2f} dB -> {:.2f} dB\n",
             o.out, writer.n_tensors(), double(writer.n_bytes()) / (1 << 20), s,
             rep["mean_snr_db_quantized"].get<double>(), rep["mean_snr_db_compensated"].get<double>());
  return kExitOk;
}

}  // namespace
}  // namespace quantize

void register_quantize(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<quantize::Options>();
  CLI::App* sub = app.add_subcommand("quantize", "quantize a model to NVFP4 / MXFP4 (compressed-tensors layout)");
  sub->add_option("input", o->in, "a GGUF file or a Hugging Face model directory")->required();
  sub->add_option("output", o->out, "the Hugging Face directory to write")->required();
  sub->add_option("--scheme", o->scheme, "nvfp4, mxfp4, or bf16 (no quantization)")
      ->check(CLI::IsMember({"nvfp4", "mxfp4", "bf16"}));
  const CLI::Validator multiple_of_16(
      [](std::string& s) -> std::string {
        long long v = 0;
        size_t used = 0;
        try {
          v = std::stoll(s, &used);
        } catch (...) {
          used = 0;
        }
        if (used != s.size() || v <= 0 || v % 16 != 0)
          return "the low-rank rank must be a positive multiple of 16 (the FP4 block size), got " + s;
        return "";
      },
      "positive multiple of 16");
  sub->add_option("--lowrank-rank", o->rank, "low-rank compensation rank (a positive multiple of 16)")
      ->check(multiple_of_16);
  sub->add_option("--lowrank-method", o->method, "error-svd (SVD of W - Q(W)) or svdquant (SVD of W first)")
      ->check(CLI::IsMember({"error-svd", "svdquant"}));
  sub->add_option("--calib", o->calib, "calibration text: weight the low-rank term by input-channel RMS");
  sub->add_option("--calib-tokens", o->calib_tokens, "calibration tokens to run (default 4096)")
      ->check(CLI::Range(16, 1 << 24));
  sub->add_option("--exclude", o->exclude, "keep matching modules in bf16: a glob, or re:REGEX (repeatable)");
  sub->add_option("--report", o->report, "write the per-module SNR report as JSON to FILE");
  sub->add_option("-t,--threads", o->threads, "threads (0 = all cores)")->check(CLI::Range(0, 1024));
  sub->add_option("--max-shard-size", o->max_shard_mb, "split the safetensors into shards of at most this many MiB")
      ->check(CLI::Range(0, 1 << 20));
  sub->callback([o, &exit_code] { exit_code = quantize::run(*o); });
}

}  // namespace ember::cli
