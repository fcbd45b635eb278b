#include "cli/common.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "chat/discovery.h"
#include "cli/dump.h"
#include "core/thread_pool.h"
#ifdef EMBER_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#include "model/gpu/gpu_decoder.h"
#endif

namespace ember::cli {

int exit_code_for(const Status& st) {
  switch (st.kind()) {
    case ErrorKind::invalid_argument:
    case ErrorKind::invalid_file:
    case ErrorKind::not_found:
    case ErrorKind::unsupported:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

int report(const Status& st) {
  fmt::print(stderr, "error: {}\n", st.message());
  return exit_code_for(st);
}

void add_model_options(CLI::App& app, ModelOptions& o) {
  app.add_option("-m,--model", o.path, "a GGUF file or a Hugging Face model directory")->required();
  app.add_option("-t,--threads", o.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", o.ctx_size, "context size in tokens")->check(CLI::Range(1, 1 << 24));
  app.add_option("--device", o.device, "CUDA device to run on (default: 0 when one is present)")
      ->check(CLI::Range(0, 1023));
  app.add_flag("--cpu", o.cpu, "run on the CPU even when a GPU is present");
  app.add_option("--dump-tensors", o.dump_dir, "write every named activation to files in DIR (see docs/decoder.md)");
  app.add_option("--dump-layers", o.dump_layers, "with --dump-tensors: only these layers (comma-separated)")
      ->delimiter(',');
}

Expected<std::unique_ptr<model::Model>> load_model(const ModelOptions& o) {
  ThreadPool::set_default_threads(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  auto m = model::Model::load(o.path);
  if (!m) return m;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& spec = (*m)->spec;
  fmt::print(stderr, "loaded {} ({}, {} layers, {:.1f} MiB of weights) in {:.2f} s, {} threads\n", o.path, spec.arch,
             spec.n_layers, double((*m)->weights.n_bytes) / (1 << 20), s, ThreadPool::global().size());
  return m;
}

namespace {

Expected<std::unique_ptr<model::Decoder>> make_bare_decoder(const model::Model& m, const ModelOptions& o) {
  if (o.cpu && o.device >= 0) return make_error(ErrorKind::invalid_argument, "--cpu and --device exclude each other");
#ifdef EMBER_HAVE_CUDA
  if (!o.cpu && (o.device >= 0 || cuda::device_available())) {
    const int device = std::max(o.device, 0);
    auto name = model::gpu::describe_device(device);
    if (!name) return name.status();
    model::gpu::GpuDecoderOptions g;
    g.device = device;
    g.n_ctx = o.ctx_size;
    auto dec = model::gpu::make_gpu_decoder(m.spec, m.weights, g);
    if (dec) {
      fmt::print(stderr, "device: GPU {}\n", *name);
      return dec;
    }
    if (dec.status().kind() != ErrorKind::unsupported || o.device >= 0) return dec.status();
    fmt::print(stderr, "warning: {}; running on the CPU\n", dec.status().message());
  }
#else
  if (o.device >= 0) return make_error(ErrorKind::unsupported, "--device: this ember was built without CUDA");
#endif
  fmt::print(stderr, "device: CPU ({} threads)\n", ThreadPool::global().size());
  return std::unique_ptr<model::Decoder>(
      std::make_unique<model::CpuDecoder>(m.spec, m.weights, o.ctx_size, ThreadPool::global()));
}

}  // namespace

Expected<std::unique_ptr<model::Decoder>> make_decoder(const model::Model& m, const ModelOptions& o) {
  auto dec = make_bare_decoder(m, o);
  if (!dec || o.dump_dir.empty()) return dec;
  auto dumper = make_tensor_dumper(o.dump_dir, std::set<int>(o.dump_layers.begin(), o.dump_layers.end()));
  if (!dumper) return dumper.status();
  (*dec)->set_dump(std::move(*dumper));
  fmt::print(stderr, "dumping activations to {}\n", o.dump_dir);
  return dec;
}

void add_sampling_options(CLI::App& app, runtime::SamplingParams& s) {
  app.add_option("--temp", s.temperature, "temperature (0 = greedy)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", s.top_k, "top-k sampling (0 = off)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", s.top_p, "top-p sampling (1 = off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", s.min_p, "min-p sampling (0 = off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1 = off)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalty looks back over")->check(CLI::Range(0, 1 << 24));
  app.add_option("-s,--seed", s.seed, "random seed (default: random)");
}

Expected<chat::ChatTemplate> load_chat_template(const model::Model& m, const std::string& model_path,
                                                const std::string& override_spec) {
  chat::TemplateQuery q;
  q.gguf = m.file.file_size() > 0 ? &m.file : nullptr;
  q.model_path = model_path;
  q.override_spec = override_spec;
  auto found = chat::find_chat_template(q);
  if (!found) return found.status();
  if (found->fallback) fmt::print(stderr, "note: the model has no chat template; using the built-in ChatML template\n");
  else fmt::print(stderr, "chat template: {}\n", found->origin);
  auto t = chat::ChatTemplate::create(found->source, chat::bos_text(m.tokenizer), chat::eos_text(m.tokenizer));
  if (!t) return Status(t.status().kind(), fmt::format("chat template from {}: {}", found->origin, t.status().message()));
  return t;
}

std::string process_escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case '\'': out += '\''; break;
      default: out += '\\'; out += c; break;
    }
  }
  return out;
}

}  // namespace ember::cli
