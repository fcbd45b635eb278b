// ember perplexity: llama.cpp-style perplexity over a text file. The text is split into
// chunks of n_ctx tokens; each chunk starts a fresh context (BOS first when the model
// adds one) and the second half of each chunk is scored.
#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/common.h"
#include "core/progress.h"
#include "model/decoder.h"

namespace ember::cli {

namespace {

struct PerplexityOptions {
  ModelOptions model;
  std::string text_file;
  int batch = 128;
  int max_chunks = -1;
};

struct NllSum {
  double nll = 0.0, nll2 = 0.0;
  int64_t count = 0;
  void add(double v) { nll += v; nll2 += v * v; ++count; }
  double ppl() const { return std::exp(nll / double(count)); }
  double ppl_error() const {
    if (count < 2) return 0.0;
    const double mean = nll / double(count), var = nll2 / double(count) - mean * mean;
    return ppl() * std::sqrt(std::max(var, 0.0) / double(count - 1));
  }
};

double token_nll(const float* logits, int n_vocab, int32_t target) {
  float mx = logits[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i] - mx));
  return std::log(sum) - double(logits[target] - mx);
}

Status score_chunk(model::Decoder& dec, std::vector<int32_t> chunk, int batch, int n_vocab, NllSum& sum) {
  const int n_ctx = int(chunk.size()), first = n_ctx / 2;
  std::vector<float> logits;  // [n][n_vocab]
  for (int pos = 0; pos < n_ctx - 1; pos += batch) {
    const int n = std::min(batch, n_ctx - 1 - pos);
    EMBER_RETURN_IF_ERROR(dec.forward(std::span<const int32_t>(chunk).subspan(size_t(pos), size_t(n)), pos, true, logits));
    for (int t = 0; t < n; ++t)
      if (pos + t >= first) sum.add(token_nll(&logits[size_t(t) * n_vocab], n_vocab, chunk[size_t(pos + t + 1)]));
  }
  return {};
}

int perplexity(const PerplexityOptions& o) {
  std::ifstream in(o.text_file, std::ios::binary);
  if (!in) return report(make_error(ErrorKind::not_found, "{}: cannot open", o.text_file));
  std::ostringstream ss;
  ss << in.rdbuf();
  auto m = load_model(o.model);
  if (!m) return report(m.status());
  const model::Model& model = **m;
  const int n_ctx = o.model.ctx_size;
  const auto tokens = model.tokenizer.encode(ss.str(), true, false);
  int n_chunks = int(tokens.size() / size_t(n_ctx));
  if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
  if (n_chunks < 1 || n_ctx < 4)
    return report(make_error(ErrorKind::invalid_argument, "{}: {} tokens are fewer than one chunk of --ctx-size {}",
                             o.text_file, tokens.size(), n_ctx));
  fmt::print(stderr, "perplexity: {} tokens, {} chunks of {}, scoring the second half of each\n", tokens.size(),
             n_chunks, n_ctx);
  auto dec = make_decoder(model, o.model);
  if (!dec) return report(dec.status());
  NllSum sum;
  ProgressBar bar("perplexity", n_chunks);
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + int64_t(c) * n_ctx, tokens.begin() + int64_t(c + 1) * n_ctx);
    if (model.tokenizer.add_bos() && model.tokenizer.bos_id() >= 0) chunk[0] = model.tokenizer.bos_id();
    if (Status st = score_chunk(**dec, std::move(chunk), o.batch, model.spec.n_vocab, sum); !st.ok()) return report(st);
    bar.update(c + 1);
    fmt::print("[{}]{:.4f},", c + 1, sum.ppl());
    std::fflush(stdout);
  }
  bar.finish();
  fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", sum.ppl(), sum.ppl_error());
  return kExitOk;
}

}  // namespace

void register_perplexity(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PerplexityOptions>();
  o->model.ctx_size = 512;
  CLI::App* sub = app.add_subcommand("perplexity", "perplexity of a model over a text file");
  add_model_options(*sub, o->model);
  sub->add_option("-f,--file", o->text_file, "text file to score")->required();
  sub->add_option("-b,--batch-size", o->batch, "tokens per forward pass")->check(CLI::Range(1, 1 << 16));
  sub->add_option("--chunks", o->max_chunks, "score at most this many chunks (-1 = all)")->check(CLI::Range(-1, 1 << 24));
  sub->callback([o, &exit_code] { exit_code = perplexity(*o); });
}

}  // namespace ember::cli
