// rope_store (rope on q and k + the f16 KV-cache write, one launch) against its CPU
// twin: cpu::rope on q and k, and the roped k and v rounded to f16 at rows positions[t].
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda_test_util.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;

std::vector<float> to_float(const std::vector<__half>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = __half2float(h[i]);
  return f;
}

TEST(CudaRopeStore, MatchesCpuRopeAndCacheWrite) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n_ctx = 300;
  for (int hd : {128, 64, 6}) {
    for (auto style : {cpu::RopeStyle::interleaved, cpu::RopeStyle::neox}) {
      const int n_tokens = 5, n_heads = 6, n_kv = 2, qw = n_heads * hd, kvw = n_kv * hd;
      auto q = cuda_test::random_normal(rng, size_t(n_tokens * qw));
      auto k = cuda_test::random_normal(rng, size_t(n_tokens * kvw));
      auto v = cuda_test::random_normal(rng, size_t(n_tokens * kvw));
      std::vector<int32_t> rows(n_ctx);
      std::iota(rows.begin(), rows.end(), 0);
      std::shuffle(rows.begin(), rows.end(), rng);
      std::vector<int32_t> pos(rows.begin(), rows.begin() + n_tokens);  // distinct cache rows
      const float base = 500000.0f, scale = 0.5f;
      const cpu::RopeParams rp{hd, hd, base, scale, style};
      std::vector<float> ref_q = q, ref_k = k;
      for (int t = 0; t < n_tokens; ++t) {
        cpu::rope(&ref_q[size_t(t * qw)], n_heads, pos[size_t(t)], rp);
        cpu::rope(&ref_k[size_t(t * kvw)], n_kv, pos[size_t(t)], rp);
      }
      DeviceArray<float> dq(q), dk(k), dv(v);
      DeviceArray<int32_t> dpos(pos);
      DeviceArray<__half> kc(size_t(n_ctx * kvw)), vc(size_t(n_ctx * kvw));
      kc.poison();
      vc.poison();
      cuda::RopeStoreParams p{dq.get(), dk.get(), dv.get(), kc.get(), vc.get(), dpos.get(), n_tokens, n_heads, n_kv,
                              hd, base, scale, style == cpu::RopeStyle::neox};
      ASSERT_TRUE(cuda::rope_store(p, nullptr).ok());
      EXPECT_LT(normalised_error(dq.download(), ref_q), 1e-6) << "hd " << hd;
      EXPECT_LT(normalised_error(dk.download(), ref_k), 1e-6) << "hd " << hd;
      const auto gk = to_float(kc.download()), gv = to_float(vc.download());
      std::vector<float> got_k, got_v;
      for (int t = 0; t < n_tokens; ++t) {
        const size_t r = size_t(pos[size_t(t)]) * kvw;
        got_k.insert(got_k.end(), gk.begin() + r, gk.begin() + r + kvw);
        got_v.insert(got_v.end(), gv.begin() + r, gv.begin() + r + kvw);
      }
      EXPECT_LT(normalised_error(got_k, ref_k), 1e-3) << "hd " << hd;  // f16 rounding
      EXPECT_LT(normalised_error(got_v, v), 1e-3) << "hd " << hd;
    }
  }
  EXPECT_FALSE(cuda::rope_store({nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1, 2, 1, 7}, nullptr).ok());
}

}  // namespace
}  // namespace ember
