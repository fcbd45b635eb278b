// KL-divergence mode of `ember perplexity` (llama.cpp's --kl-divergence-base /
// --kl-divergence). The base run saves, for every scored position, the reference model's
// top-k log-probabilities (k = kKlTopK) and the target token's NLL; the compare run reads
// them back and, for each position, computes
//   KL(P || Q) ≈ Σ_{i in top-k(P)} p_i·(log p_i − log q_i) + p_rest·(log p_rest − log q_rest)
// with p_rest = 1 − Σ p_i and q_rest = 1 − Σ q_i over the same ids: the KL of the two
// distributions coarsened to k + 1 outcomes, a lower bound of the full-vocabulary KL that is
// tight when the top k hold almost all of P's mass (they do at k = 64 on natural text).
// File layout (little-endian): "EMBERKL1", u32 n_vocab, u32 n_ctx, u32 top_k, u32 reserved,
// u64 n_positions, u64 token hash (FNV-1a of every token scored), then per position:
// f32 target NLL, f32 logp[top_k] (descending), i32 id[top_k].
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/status.h"

namespace ember::cli {

inline constexpr int kKlTopK = 64;

struct KlPosition {
  float nll = 0;  // of the target token
  std::vector<float> logp;
  std::vector<int32_t> ids;
};

struct KlHeader {
  uint32_t n_vocab = 0, n_ctx = 0, top_k = kKlTopK;
  uint64_t n_positions = 0, token_hash = 0;
};

// Streams positions out (base run).
class KlWriter {
 public:
  ~KlWriter();
  Status open(const std::string& path, const KlHeader& h);
  Status add(const float* logits, int n_vocab, int32_t target);
  Status close(uint64_t token_hash);  // rewrites the header with the final counts

 private:
  std::string path_;
  FILE* f_ = nullptr;
  KlHeader h_;
};

// Reads a base file back (compare run).
Expected<std::vector<KlPosition>> read_kl_base(const std::string& path, KlHeader& h);

// The statistics of a compare run.
struct KlStats {
  std::vector<double> kl;
  int64_t same_top1 = 0;
  double nll_base = 0, nll = 0;
  void add(const KlPosition& base, const float* logits, int n_vocab, int32_t target);
  void print(FILE* out) const;
};

uint64_t fnv1a(uint64_t h, int32_t token);

}  // namespace ember::cli
