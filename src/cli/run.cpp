// ember run: complete a prompt, streaming the completion to stdout and timings to stderr.
#include <fmt/core.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/common.h"
#include "runtime/generator.h"

namespace ember::cli {

namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  runtime::SamplingParams sampling;
  std::vector<std::string> stop;
  bool no_escape = false;
  bool ignore_eos = false;
  int batch = 256;
};

Expected<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorKind::not_found, "{}: cannot open", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run(const RunOptions& o) {
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    auto text = read_text_file(o.prompt_file);
    if (!text) return report(text.status());
    prompt = *text;
  } else if (!o.no_escape) {
    prompt = process_escapes(prompt);
  }
  auto m = load_model(o.model);
  if (!m) return report(m.status());
  const model::Model& model = **m;
  const auto ids = model.tokenizer.encode(prompt, true, true);
  if (ids.empty()) return report(make_error(ErrorKind::invalid_argument, "the prompt is empty"));

  auto decoder = make_decoder(model, o.model);
  if (!decoder) return report(decoder.status());
  runtime::Generator gen(model, **decoder);
  runtime::GenerateOptions go;
  go.max_tokens = o.n_predict;
  go.sampling = o.sampling;
  go.sampling.banned = runtime::invalid_tokens(model.tokenizer, model.spec.n_vocab);
  go.stop = o.stop;
  go.ignore_eos = o.ignore_eos;
  go.prefill_chunk = o.batch;
  auto stats = gen.generate(ids, go, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!stats) return report(stats.status());
  const auto& s = *stats;
  fmt::print(stderr, "\nprompt: {:5d} tokens in {:8.2f} ms = {:8.2f} tokens/s\n", s.n_prompt, s.prompt_seconds * 1e3,
             s.n_prompt / std::max(s.prompt_seconds, 1e-9));
  fmt::print(stderr, "gen:    {:5d} tokens in {:8.2f} ms = {:8.2f} tokens/s (finish: {})\n", s.n_generated,
             s.gen_seconds * 1e3, s.n_generated / std::max(s.gen_seconds, 1e-9), s.finish_reason);
  return kExitOk;
}

}  // namespace

void register_run(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "complete a prompt");
  add_model_options(*sub, o->model);
  auto* p = sub->add_option("-p,--prompt", o->prompt, "prompt text (\\n escapes are processed)");
  auto* f = sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  p->excludes(f);
  sub->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1 = until the context is full)")
      ->check(CLI::Range(-1, 1 << 24));
  add_sampling_options(*sub, o->sampling);
  sub->add_option("--stop", o->stop, "stop string (repeatable)");
  sub->add_option("-b,--batch-size", o->batch, "prompt tokens per forward pass")->check(CLI::Range(1, 1 << 16));
  sub->add_flag("--no-escape", o->no_escape, "do not process escapes in the prompt");
  sub->add_flag("--ignore-eos", o->ignore_eos, "keep generating after end-of-generation tokens");
  sub->callback([o, &exit_code] {
    if (o->prompt.empty() && o->prompt_file.empty()) {
      exit_code = report(make_error(ErrorKind::invalid_argument, "run needs a prompt: -p TEXT or -f FILE"));
      return;
    }
    exit_code = run(*o);
  });
}

}  // namespace ember::cli
