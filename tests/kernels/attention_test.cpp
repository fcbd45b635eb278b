// GPU attention (decode and prefill kernels) and the f16 KV store against cpu::attention.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda_test_util.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;

struct Case {
  int n_tokens, pos0, n_heads, n_kv_heads, head_dim, window;
  float softcap;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {1, 0, 4, 4, 64, 0, 0.0f},       {1, 37, 8, 2, 128, 0, 0.0f},     {1, 1000, 6, 1, 256, 0, 0.0f},
      {1, 700, 4, 2, 256, 128, 0.0f},  {3, 300, 8, 2, 64, 0, 0.0f},     {8, 1000, 4, 1, 128, 7, 50.0f},
      {17, 0, 4, 4, 64, 0, 0.0f},      {17, 5, 8, 2, 128, 0, 0.0f},     {100, 5, 6, 3, 256, 16, 0.0f},
      {257, 0, 4, 1, 64, 0, 30.0f},    {33, 4000, 2, 2, 96, 0, 0.0f},   {65, 100, 4, 2, 128, 512, 0.0f},
      {2, 5000, 32, 8, 128, 4096, 0.0f}, {40, 20, 4, 4, 32, 1, 0.0f},
  };
  return c;
}

std::vector<float> round_f16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = __half2float(__float2half_rn(v[i]));
  return r;
}

std::vector<__half> to_f16(const std::vector<float>& v) {
  std::vector<__half> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = __float2half_rn(v[i]);
  return r;
}

// The graph-friendly decode: position from device memory, all slices launched, merged by
// the last slice (counters), and the int8 copy of the output. Run twice: the counters
// must be left at zero.
void check_fused_decode(const Case& c, cuda::AttentionParams p, const std::vector<float>& ref,
                        const std::string& label) {
  constexpr int kMaxSplits = 32;
  DeviceArray<float> ws(cuda::attention_decode_workspace(c.n_tokens, c.n_heads, c.head_dim, kMaxSplits));
  DeviceArray<int32_t> pos(std::vector<int32_t>{c.pos0});
  DeviceArray<int> counters(std::vector<int>(size_t(c.n_tokens * c.n_heads), 0));
  const bool q8 = c.head_dim % 32 == 0;
  DeviceArray<int8_t> oq(ref.size());
  DeviceArray<float> od(ref.size() / 32 + 1), out(ref.size());
  p.out = out.get();
  p.pos_dev = pos.get();
  p.pos0 = 0;  // ignored: read from pos_dev
  p.counters = counters.get();
  if (q8) {
    p.out_q = oq.get();
    p.out_d = od.get();
  }
  for (int run = 0; run < 2; ++run) {
    out.poison();
    od.poison();
    const Status st = cuda::attention_decode(p, ws.get(), kMaxSplits, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    const auto got = out.download();
    EXPECT_LT(normalised_error(got, ref), 1e-5) << "fused decode " << label << " run " << run;
    if (!q8) continue;
    const auto q = oq.download();
    const auto d = od.download();
    std::vector<float> deq(got.size());
    for (size_t i = 0; i < got.size(); ++i) deq[i] = float(q[i]) * d[i / 32];
    EXPECT_LT(normalised_error(deq, got), 1e-2) << "int8 output " << label;
  }
  for (int v : counters.download()) ASSERT_EQ(v, 0) << label;
}

TEST(CudaAttention, DecodeAndPrefillMatchCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  constexpr int kMaxSplits = 32;
  for (const Case& c : cases()) {
    const int kv_w = c.n_kv_heads * c.head_dim, q_w = c.n_heads * c.head_dim;
    const size_t n_keys = size_t(c.pos0 + c.n_tokens);
    const auto q = cuda_test::random_normal(rng, size_t(c.n_tokens) * q_w);
    const auto k = round_f16(cuda_test::random_normal(rng, n_keys * kv_w, 2.0f));
    const auto v = round_f16(cuda_test::random_normal(rng, n_keys * kv_w));
    std::vector<float> ref(size_t(c.n_tokens) * q_w);
    cpu::AttentionParams cp;
    cp.n_tokens = c.n_tokens;
    cp.pos0 = c.pos0;
    cp.n_heads = c.n_heads;
    cp.n_kv_heads = c.n_kv_heads;
    cp.head_dim = c.head_dim;
    cp.window = c.window;
    cp.scale = 1.0f / std::sqrt(float(c.head_dim));
    cp.softcap = c.softcap;
    cp.q = q.data();
    cp.k = k.data();
    cp.v = v.data();
    cp.out = ref.data();
    cpu::attention(cp, ThreadPool::global());

    DeviceArray<float> dq(q), out(ref.size());
    DeviceArray<__half> dk(to_f16(k)), dv(to_f16(v));
    DeviceArray<float> ws(cuda::attention_decode_workspace(c.n_tokens, c.n_heads, c.head_dim, kMaxSplits));
    cuda::AttentionParams p{c.n_tokens, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, c.window, cp.scale, c.softcap,
                            dq.get(), dk.get(), dv.get(), out.get()};
    const std::string label = "tokens " + std::to_string(c.n_tokens) + " pos " + std::to_string(c.pos0) + " hd " +
                              std::to_string(c.head_dim) + " window " + std::to_string(c.window);
    out.poison();
    Status st = cuda::attention_decode(p, ws.get(), kMaxSplits, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_LT(normalised_error(out.download(), ref), 1e-5) << "decode " << label;
    out.poison();
    st = cuda::attention_prefill(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    // the tensor-core path rounds q and the softmax weights to f16
    const double tol = cuda::flash_prefill_supported(p) ? 2e-3 : 1e-5;
    EXPECT_LT(normalised_error(out.download(), ref), tol) << "prefill " << label;
    if (c.n_tokens <= 8) check_fused_decode(c, p, ref, label);
  }
}

// Tensor-core prefill on shapes awkward for its 64-row / 64-key (32 for head_dim 256)
// tiles: tails, chunked prefill over an existing cache (pos0 > 0), windows that cut
// tiles, GQA ratios 1 / 4 / 8, soft-capping.
TEST(CudaAttention, FlashPrefillMatchesCpu) {
  EMBER_REQUIRE_CUDA_DEVICE();
  const uint32_t seed = cuda_test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<Case> flash_cases = {
      {1, 0, 4, 4, 64, 0, 0.0f},       {63, 0, 4, 4, 64, 0, 0.0f},      {65, 0, 8, 2, 128, 0, 0.0f},
      {130, 77, 8, 1, 128, 0, 0.0f},   {200, 1000, 8, 8, 256, 0, 0.0f}, {129, 3, 4, 1, 256, 100, 0.0f},
      {300, 0, 8, 1, 128, 50, 0.0f},   {97, 500, 4, 1, 64, 64, 30.0f},  {257, 31, 8, 2, 128, 4096, 0.0f},
      {70, 0, 2, 2, 256, 1, 50.0f},    {500, 0, 32, 8, 128, 0, 0.0f},
  };
  for (const Case& c : flash_cases) {
    const int kv_w = c.n_kv_heads * c.head_dim, q_w = c.n_heads * c.head_dim;
    const size_t n_keys = size_t(c.pos0 + c.n_tokens);
    const auto q = cuda_test::random_normal(rng, size_t(c.n_tokens) * q_w);
    const auto k = round_f16(cuda_test::random_normal(rng, n_keys * kv_w, 2.0f));
    const auto v = round_f16(cuda_test::random_normal(rng, n_keys * kv_w));
    std::vector<float> ref(size_t(c.n_tokens) * q_w);
    cpu::AttentionParams cp;
    cp.n_tokens = c.n_tokens;
    cp.pos0 = c.pos0;
    cp.n_heads = c.n_heads;
    cp.n_kv_heads = c.n_kv_heads;
    cp.head_dim = c.head_dim;
    cp.window = c.window;
    cp.scale = 1.0f / std::sqrt(float(c.head_dim));
    cp.softcap = c.softcap;
    cp.q = q.data();
    cp.k = k.data();
    cp.v = v.data();
    cp.out = ref.data();
    cpu::attention(cp, ThreadPool::global());
    // poisoned cache rows past the last key: the kernel must not read them
    auto kh = to_f16(k), vh = to_f16(v);
    const __half nan = __ushort_as_half(0xffff);
    kh.resize(kh.size() + size_t(64) * kv_w, nan);
    vh.resize(vh.size() + size_t(64) * kv_w, nan);
    DeviceArray<float> dq(q), out(ref.size());
    DeviceArray<__half> dk(kh), dv(vh);
    const cuda::AttentionParams p{c.n_tokens, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, c.window, cp.scale,
                                  c.softcap, dq.get(), dk.get(), dv.get(), out.get()};
    const std::string label = "tokens " + std::to_string(c.n_tokens) + " pos " + std::to_string(c.pos0) + " heads " +
                              std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " hd " +
                              std::to_string(c.head_dim) + " window " + std::to_string(c.window);
    ASSERT_TRUE(cuda::flash_prefill_supported(p)) << label;
    out.poison();
    const Status st = cuda::flash_prefill(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    const auto got = out.download();
    for (float x : got) ASSERT_TRUE(std::isfinite(x)) << label;
    EXPECT_LT(normalised_error(got, ref), 2e-3) << "flash prefill " << label;
  }
}

TEST(CudaAttention, KvStoreWritesF16Rows) {
  EMBER_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(cuda_test::fresh_seed());
  const int n_ctx = 50, width = 3 * 64, pos0 = 11, n = 17;
  const auto k = cuda_test::random_normal(rng, size_t(n) * width), v = cuda_test::random_normal(rng, size_t(n) * width);
  DeviceArray<float> dk(k), dv(v);
  DeviceArray<__half> kc(size_t(n_ctx) * width), vc(size_t(n_ctx) * width);
  kc.poison();
  vc.poison();
  ASSERT_TRUE(cuda::kv_store({dk.get(), dv.get(), kc.get(), vc.get(), pos0, n, width}, nullptr).ok());
  const auto hk = kc.download(), hv = vc.download();
  for (int t = 0; t < n_ctx; ++t)
    for (int i = 0; i < width; ++i) {
      const size_t at = size_t(t) * width + size_t(i);
      const uint16_t kb = reinterpret_cast<const uint16_t&>(hk[at]), vb = reinterpret_cast<const uint16_t&>(hv[at]);
      if (t < pos0 || t >= pos0 + n) {  // untouched rows keep the poison
        ASSERT_EQ(kb, 0xffff);
        ASSERT_EQ(vb, 0xffff);
      } else {
        const size_t src = size_t(t - pos0) * width + size_t(i);
        ASSERT_EQ(__half2float(hk[at]), __half2float(__float2half_rn(k[src])));
        ASSERT_EQ(__half2float(hv[at]), __half2float(__float2half_rn(v[src])));
      }
    }
}

}  // namespace
}  // namespace ember
