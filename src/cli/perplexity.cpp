// ember perplexity: llama.cpp-style perplexity over a text file. The text is split into
// chunks of n_ctx tokens; each chunk starts a fresh context (BOS first when the model
// adds one) and the second half of each chunk is scored. --kl-divergence-base FILE saves
// the reference model's top-k log-probabilities; --kl-divergence FILE compares against
// them (mean KL, top-1 agreement, both perplexities; perplexity_kl.h).
#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/common.h"
#include "cli/perplexity_kl.h"
#include "core/progress.h"
#include "model/decoder.h"

namespace ember::cli {

namespace {

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

struct PerplexityOptions {
  ModelOptions model;
  std::string text_file;
  int batch = 128;
  int max_chunks = -1;
  std::string kl_base;     // --kl-divergence-base: write the reference top-k here
  std::string kl_compare;  // --kl-divergence: compare against this base file
};

// What happens at each scored position: the NLL sum, and the KL base / comparison.
struct Scorer {
  NllSum* sum = nullptr;
  KlWriter* kl_writer = nullptr;
  const std::vector<KlPosition>* kl_base = nullptr;
  KlStats* kl_stats = nullptr;
  size_t position = 0;
  uint64_t token_hash = 0xcbf29ce484222325ull;  // FNV-1a of every token of the scored chunks
  uint64_t token_hash_expected = 0;
};


double token_nll(const float* logits, int n_vocab, int32_t target) {
  float mx = logits[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i] - mx));
  return std::log(sum) - double(logits[target] - mx);
}

Status score_position(Scorer& s, const float* logits, int n_vocab, int32_t target) {
  s.sum->add(token_nll(logits, n_vocab, target));
  if (s.kl_writer) return s.kl_writer->add(logits, n_vocab, target);
  if (s.kl_base) {
    if (s.position >= s.kl_base->size())
      return make_error(ErrorKind::invalid_argument, "--kl-divergence: the base file has only {} positions; run with "
                        "the same text, --ctx-size and --chunks", s.kl_base->size());
    s.kl_stats->add((*s.kl_base)[s.position], logits, n_vocab, target);
  }
  ++s.position;
  return {};
}

Status score_chunk(model::Decoder& dec, std::vector<int32_t> chunk, int batch, int n_vocab, Scorer& scorer) {
  const int n_ctx = int(chunk.size()), first = n_ctx / 2;
  std::vector<float> logits;  // [n][n_vocab]
  for (int pos = 0; pos < n_ctx - 1; pos += batch) {
    const int n = std::min(batch, n_ctx - 1 - pos);
    EMBER_RETURN_IF_ERROR(dec.forward(std::span<const int32_t>(chunk).subspan(size_t(pos), size_t(n)), pos, true, logits));
    for (int t = 0; t < n; ++t)
      if (pos + t >= first)
        EMBER_RETURN_IF_ERROR(score_position(scorer, &logits[size_t(t) * n_vocab], n_vocab, chunk[size_t(pos + t + 1)]));
  }
  return {};
}

// Sets up the KL base writer or reads the base file for a comparison run.
Status open_kl(const PerplexityOptions& o, const model::Model& model, KlWriter& writer,
               std::vector<KlPosition>& base, Scorer& scorer) {
  if (!o.kl_base.empty() && !o.kl_compare.empty())
    return make_error(ErrorKind::invalid_argument, "--kl-divergence-base and --kl-divergence exclude each other");
  if (!o.kl_base.empty()) {
    KlHeader h;
    h.n_vocab = uint32_t(model.spec.n_vocab);
    h.n_ctx = uint32_t(o.model.ctx_size);
    EMBER_RETURN_IF_ERROR(writer.open(o.kl_base, h));
    scorer.kl_writer = &writer;
  }
  if (!o.kl_compare.empty()) {
    KlHeader h;
    auto read = read_kl_base(o.kl_compare, h);
    if (!read) return read.status();
    if (h.n_vocab != uint32_t(model.spec.n_vocab) || h.n_ctx != uint32_t(o.model.ctx_size))
      return make_error(ErrorKind::invalid_argument, "--kl-divergence {}: the base was made with n_vocab {} and "
                        "--ctx-size {}, this run has {} and {}", o.kl_compare, h.n_vocab, h.n_ctx, model.spec.n_vocab,
                        o.model.ctx_size);
    base = std::move(*read);
    scorer.kl_base = &base;
    scorer.token_hash_expected = h.token_hash;
  }
  return {};
}

Status finish_kl(const PerplexityOptions& o, const Scorer& scorer, KlWriter& writer, const KlStats& stats) {
  if (scorer.kl_writer) {
    EMBER_RETURN_IF_ERROR(writer.close(scorer.token_hash));
    fmt::print(stderr, "perplexity: saved the top-{} log-probabilities of {} positions to {}\n", kKlTopK,
               scorer.sum->count, o.kl_base);
  }
  if (scorer.kl_base) {
    if (scorer.position != scorer.kl_base->size() || scorer.token_hash != scorer.token_hash_expected)
      return make_error(ErrorKind::invalid_argument, "--kl-divergence {}: the base scored {} positions of other tokens "
                        "(this run: {} positions{}); use the same text, tokenizer, --ctx-size and --chunks", o.kl_compare,
                        scorer.kl_base->size(), scorer.position,
                        scorer.token_hash != scorer.token_hash_expected ? ", tokenized differently" : "");
    stats.print(stdout);
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
  NllSum sum;
  Scorer scorer;
  scorer.sum = &sum;
  KlWriter kl_writer;
  std::vector<KlPosition> kl_base;
  KlStats kl_stats;
  scorer.kl_stats = &kl_stats;
  for (size_t i = 0; i < size_t(n_chunks) * size_t(n_ctx); ++i) scorer.token_hash = fnv1a(scorer.token_hash, tokens[i]);
  if (Status st = open_kl(o, model, kl_writer, kl_base, scorer); !st.ok()) return report(st);
  auto dec = make_decoder(model, o.model);
  if (!dec) return report(dec.status());
  ProgressBar bar("perplexity", n_chunks);
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + int64_t(c) * n_ctx, tokens.begin() + int64_t(c + 1) * n_ctx);
    if (model.tokenizer.add_bos() && model.tokenizer.bos_id() >= 0) chunk[0] = model.tokenizer.bos_id();
    if (Status st = score_chunk(**dec, std::move(chunk), o.batch, model.spec.n_vocab, scorer); !st.ok())
      return report(st);
    bar.update(c + 1);
    fmt::print("[{}]{:.4f},", c + 1, sum.ppl());
    std::fflush(stdout);
  }
  bar.finish();
  fmt::print("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", sum.ppl(), sum.ppl_error());
  if (Status st = finish_kl(o, scorer, kl_writer, kl_stats); !st.ok()) return report(st);
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
  sub->add_option("--kl-divergence-base", o->kl_base, "save this model's top-64 log-probabilities to FILE (the reference)");
  sub->add_option("--kl-divergence", o->kl_compare, "compare with a --kl-divergence-base FILE: mean KL, top-1 agreement");
  sub->callback([o, &exit_code] { exit_code = perplexity(*o); });
}

}  // namespace ember::cli
