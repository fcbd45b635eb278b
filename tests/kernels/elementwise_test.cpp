// Element-wise GPU kernels, rope and the embedding gather against their CPU twins.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embed.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda_test_util.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace ember {
namespace {

using cuda_test::DeviceArray;
using cuda_test::normalised_error;
using quant::Type;

class CudaElementwise : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
    seed_ = cuda_test::fresh_seed();
    rng_.seed(seed_);
  }
  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

TEST_F(CudaElementwise, GatedActivationsMatchCpu) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  for (int64_t n : {1, 17, 17 * 1001, 300000}) {
    const auto gate = cuda_test::random_normal(rng_, size_t(n), 3.0f), up = cuda_test::random_normal(rng_, size_t(n));
    for (auto act : {cuda::GatedAct::silu, cuda::GatedAct::gelu_tanh}) {
      std::vector<float> ref(static_cast<size_t>(n));
      if (act == cuda::GatedAct::silu) cpu::silu_mul(gate.data(), up.data(), ref.data(), n);
      else cpu::gelu_tanh_mul(gate.data(), up.data(), ref.data(), n);
      DeviceArray<float> g(gate), u(up), y(static_cast<size_t>(n));
      y.poison();
      ASSERT_TRUE(cuda::gated_act({g.get(), u.get(), y.get(), n, act}, nullptr).ok());
      EXPECT_LT(normalised_error(y.download(), ref), 1e-6) << n;
      // in place (y aliases gate), as the decoder uses it
      ASSERT_TRUE(cuda::gated_act({g.get(), u.get(), g.get(), n, act}, nullptr).ok());
      EXPECT_LT(normalised_error(g.download(), ref), 1e-6) << n;
    }
  }
}

TEST_F(CudaElementwise, AddBiasSoftcapConvertMatchCpu) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const int64_t rows = 17, cols = 1001, n = rows * cols;
  const auto x = cuda_test::random_normal(rng_, size_t(n), 40.0f), y = cuda_test::random_normal(rng_, size_t(n));
  const auto b = cuda_test::random_normal(rng_, size_t(cols));
  const size_t un = static_cast<size_t>(n);
  std::vector<float> sum(un), biased(un), capped(un), halves(un);
  for (int64_t i = 0; i < n; ++i) {
    sum[size_t(i)] = x[size_t(i)] + y[size_t(i)];
    biased[size_t(i)] = x[size_t(i)] + b[size_t(i % cols)];
    capped[size_t(i)] = 30.0f * std::tanh(x[size_t(i)] / 30.0f);
    halves[size_t(i)] = __half2float(__float2half_rn(x[size_t(i)]));
  }
  DeviceArray<float> dx(x), dy(y), db(b);
  ASSERT_TRUE(cuda::add({dx.get(), dy.get(), n}, nullptr).ok());
  EXPECT_LT(normalised_error(dx.download(), sum), 1e-7);
  dx.upload(x);
  ASSERT_TRUE(cuda::add_bias({dx.get(), db.get(), rows, cols}, nullptr).ok());
  EXPECT_LT(normalised_error(dx.download(), biased), 1e-7);
  dx.upload(x);
  ASSERT_TRUE(cuda::softcap({dx.get(), n, 30.0f}, nullptr).ok());
  EXPECT_LT(normalised_error(dx.download(), capped), 1e-6);
  dx.upload(x);
  DeviceArray<__half> h(static_cast<size_t>(n));
  h.poison();
  ASSERT_TRUE(cuda::convert_f32_to_f16({dx.get(), h.get(), n}, nullptr).ok());
  const auto hh = h.download();
  std::vector<float> got(hh.size());
  for (size_t i = 0; i < hh.size(); ++i) got[i] = __half2float(hh[i]);
  EXPECT_EQ(normalised_error(got, halves), 0.0);
}

TEST_F(CudaElementwise, RopeMatchesCpu) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  std::uniform_int_distribution<int32_t> pos_dist(0, 200000);
  for (int hd : {64, 128, 256, 6}) {
    for (auto style : {cpu::RopeStyle::interleaved, cpu::RopeStyle::neox}) {
      for (auto [base, scale] : {std::pair{10000.0f, 1.0f}, {1000000.0f, 0.25f}}) {
        const int n_tokens = 17, n_heads = 3, stride = n_heads * hd + 5;  // padded rows: stride != width
        auto x = cuda_test::random_normal(rng_, size_t(n_tokens) * stride);
        std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
        for (auto& p : pos) p = pos_dist(rng_);
        pos[0] = 0;
        std::vector<float> ref = x;
        const cpu::RopeParams rp{hd, hd, base, scale, style};
        for (int t = 0; t < n_tokens; ++t) cpu::rope(&ref[size_t(t) * stride], n_heads, pos[size_t(t)], rp);
        DeviceArray<float> dx(x);
        DeviceArray<int32_t> dp(pos);
        const cuda::RopeParams p{dx.get(), stride, dp.get(), n_tokens, n_heads, hd, base, scale,
                                 style == cpu::RopeStyle::neox};
        ASSERT_TRUE(cuda::rope(p, nullptr).ok());
        EXPECT_LT(normalised_error(dx.download(), ref), 1e-6) << "head_dim " << hd;
      }
    }
  }
}

TEST_F(CudaElementwise, EmbedMatchesCpu) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  for (Type type : {Type::F32, Type::F16, Type::BF16, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q8_0, Type::Q4_K,
                    Type::Q6_K}) {
    const int64_t n_vocab = 301, n_embd = 768;
    const int64_t rb = *quant::row_bytes(type, n_embd);
    std::vector<uint8_t> table(size_t(rb * n_vocab));
    const auto src = cuda_test::random_normal(rng_, size_t(n_vocab * n_embd));
    for (int64_t r = 0; r < n_vocab; ++r)
      quant::quantize_row(type, &src[size_t(r * n_embd)], &table[size_t(r * rb)], n_embd);
    std::uniform_int_distribution<int32_t> id(0, int32_t(n_vocab) - 1);
    std::vector<int32_t> tokens(17);
    for (auto& t : tokens) t = id(rng_);
    tokens[3] = int32_t(n_vocab) - 1;
    const float scale = std::sqrt(float(n_embd));
    std::vector<float> ref(tokens.size() * size_t(n_embd));
    for (size_t t = 0; t < tokens.size(); ++t) {
      quant::dequantize_row(type, &table[size_t(tokens[t] * rb)], &ref[t * size_t(n_embd)], n_embd);
      for (int64_t i = 0; i < n_embd; ++i) ref[t * size_t(n_embd) + size_t(i)] *= scale;
    }
    DeviceArray<uint8_t> dt(table);
    DeviceArray<int32_t> dtok(tokens);
    DeviceArray<float> out(ref.size());
    out.poison();
    const cuda::EmbedParams p{type, dt.get(), rb, n_embd, n_vocab, dtok.get(), int(tokens.size()), scale, out.get()};
    const Status st = cuda::embed(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_LT(normalised_error(out.download(), ref), 1e-6) << quant::type_name(type);
  }
}

}  // namespace
}  // namespace ember
