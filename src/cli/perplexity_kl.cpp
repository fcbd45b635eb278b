// KL-divergence files and statistics for `ember perplexity` (perplexity_kl.h).
#include "cli/perplexity_kl.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace ember::cli {
namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'E', 'R', 'K', 'L', '1'};
constexpr size_t kHeaderBytes = 8 + 4 * 4 + 8 * 2;

// log-softmax of logits at every index (double precision normaliser).
void log_softmax(const float* logits, int n, std::vector<float>& out) {
  const float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i] - mx));
  const double lse = double(mx) + std::log(sum);
  out.resize(size_t(n));
  for (int i = 0; i < n; ++i) out[size_t(i)] = float(double(logits[i]) - lse);
}

void put(std::vector<uint8_t>& b, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}

}  // namespace

uint64_t fnv1a(uint64_t h, int32_t token) {
  for (int i = 0; i < 4; ++i) {
    h ^= uint8_t(uint32_t(token) >> (8 * i));
    h *= 0x100000001b3ull;
  }
  return h;
}

KlWriter::~KlWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

Status KlWriter::open(const std::string& path, const KlHeader& h) {
  path_ = path;
  h_ = h;
  f_ = std::fopen(path.c_str(), "wb");
  if (f_ == nullptr) return make_error(ErrorKind::io, "{}: cannot create", path);
  const std::vector<uint8_t> zeros(kHeaderBytes, 0);
  if (std::fwrite(zeros.data(), 1, zeros.size(), f_) != zeros.size()) return make_error(ErrorKind::io, "{}: write failed", path);
  return {};
}

Status KlWriter::add(const float* logits, int n_vocab, int32_t target) {
  std::vector<float> lp;
  log_softmax(logits, n_vocab, lp);
  const int k = int(std::min<uint32_t>(h_.top_k, uint32_t(n_vocab)));
  std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) { return lp[size_t(a)] > lp[size_t(b)]; });
  std::vector<uint8_t> rec;
  const float nll = -lp[size_t(target)];
  put(rec, &nll, 4);
  for (int i = 0; i < int(h_.top_k); ++i) {
    const float v = i < k ? lp[size_t(ids[size_t(i)])] : -INFINITY;
    put(rec, &v, 4);
  }
  for (int i = 0; i < int(h_.top_k); ++i) {
    const int32_t id = i < k ? ids[size_t(i)] : -1;
    put(rec, &id, 4);
  }
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size()) return make_error(ErrorKind::io, "{}: write failed", path_);
  ++h_.n_positions;
  return {};
}

Status KlWriter::close(uint64_t token_hash) {
  h_.token_hash = token_hash;
  std::vector<uint8_t> b;
  put(b, kMagic, 8);
  const uint32_t reserved = 0;
  for (uint32_t v : {h_.n_vocab, h_.n_ctx, h_.top_k, reserved}) put(b, &v, 4);
  put(b, &h_.n_positions, 8);
  put(b, &h_.token_hash, 8);
  const bool ok = std::fseek(f_, 0, SEEK_SET) == 0 && std::fwrite(b.data(), 1, b.size(), f_) == b.size();
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed) return make_error(ErrorKind::io, "{}: write failed", path_);
  return {};
}

Expected<std::vector<KlPosition>> read_kl_base(const std::string& path, KlHeader& h) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return make_error(ErrorKind::not_found, "{}: cannot open the KL base file", path);
  std::vector<uint8_t> hdr(kHeaderBytes);
  const bool got = std::fread(hdr.data(), 1, hdr.size(), f) == hdr.size();
  const auto bad = [&](std::string what) {
    std::fclose(f);
    return make_error(ErrorKind::invalid_file, "{}: {}", path, what);
  };
  if (!got || std::memcmp(hdr.data(), kMagic, 8) != 0) return bad("not an ember KL base file (magic EMBERKL1)");
  uint32_t reserved = 0;
  std::memcpy(&h.n_vocab, &hdr[8], 4);
  std::memcpy(&h.n_ctx, &hdr[12], 4);
  std::memcpy(&h.top_k, &hdr[16], 4);
  std::memcpy(&reserved, &hdr[20], 4);
  std::memcpy(&h.n_positions, &hdr[24], 8);
  std::memcpy(&h.token_hash, &hdr[32], 8);
  if (h.top_k == 0 || h.top_k > 4096 || h.n_vocab == 0 || h.n_positions > (uint64_t(1) << 32))
    return bad(fmt::format("implausible header (top_k {}, n_vocab {}, {} positions)", h.top_k, h.n_vocab, h.n_positions));
  std::vector<KlPosition> out(size_t(h.n_positions));
  for (KlPosition& p : out) {
    p.logp.resize(h.top_k);
    p.ids.resize(h.top_k);
    if (std::fread(&p.nll, 4, 1, f) != 1 || std::fread(p.logp.data(), 4, h.top_k, f) != h.top_k ||
        std::fread(p.ids.data(), 4, h.top_k, f) != h.top_k)
      return bad(fmt::format("truncated: fewer than the {} positions the header declares", h.n_positions));
    for (int32_t id : p.ids)
      if (id < -1 || id >= int32_t(h.n_vocab)) return bad(fmt::format("token id {} out of range", id));
  }
  std::fclose(f);
  return out;
}

void KlStats::add(const KlPosition& base, const float* logits, int n_vocab, int32_t target) {
  std::vector<float> lq;
  log_softmax(logits, n_vocab, lq);
  double kl = 0, p_top = 0, q_top = 0;
  for (size_t i = 0; i < base.ids.size(); ++i) {
    if (base.ids[i] < 0) continue;
    const double lp = base.logp[i], lqi = lq[size_t(base.ids[i])], p = std::exp(lp);
    kl += p * (lp - lqi);
    p_top += p;
    q_top += std::exp(lqi);
  }
  const double p_rest = std::max(0.0, 1.0 - p_top), q_rest = std::max(1e-30, 1.0 - q_top);
  if (p_rest > 1e-12) kl += p_rest * (std::log(p_rest) - std::log(q_rest));
  this->kl.push_back(std::max(0.0, kl));
  const int32_t top = int32_t(std::max_element(lq.begin(), lq.end()) - lq.begin());
  same_top1 += top == base.ids[0];
  nll_base += base.nll;
  nll += -double(lq[size_t(target)]);
}

void KlStats::print(FILE* out) const {
  const size_t n = kl.size();
  if (n == 0) return;
  std::vector<double> sorted = kl;
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(kl.begin(), kl.end(), 0.0) / double(n);
  double var = 0;
  for (double v : kl) var += (v - mean) * (v - mean);
  const double err = n > 1 ? std::sqrt(var / double(n - 1) / double(n)) : 0.0;
  const double top1 = 100.0 * double(same_top1) / double(n);
  fmt::print(out, "\n====== KL divergence statistics ({} positions, top-{} base) ======\n", n, kKlTopK);
  fmt::print(out, "PPL(base):      {:.4f}\n", std::exp(nll_base / double(n)));
  fmt::print(out, "PPL(this):      {:.4f}\n", std::exp(nll / double(n)));
  fmt::print(out, "ln(PPL ratio):  {:.5f}\n", (nll - nll_base) / double(n));
  fmt::print(out, "Mean KLD:       {:.6f} +/- {:.6f}\n", mean, err);
  fmt::print(out, "Median KLD:     {:.6f}\n", sorted[n / 2]);
  fmt::print(out, "99.0% KLD:      {:.6f}\n", sorted[std::min(n - 1, size_t(double(n) * 0.99))]);
  fmt::print(out, "Maximum KLD:    {:.6f}\n", sorted.back());
  fmt::print(out, "Same top-1:     {:.3f}%\n", top1);
}

}  // namespace ember::cli
