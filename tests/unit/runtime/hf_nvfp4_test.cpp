// NVFP4 Hugging Face checkpoints built in the test from the tiny Qwen3 fixture: every
// projection (but one, kept f16 through the ignore / exclude list) is quantized with
// ember's reference quantizer and written in the compressed-tensors and the ModelOpt
// layouts (and ModelOpt NVFP4_SVD with low-rank factors and pre_quant_scale). Loading
// each must equal loading its dequantization written as f32: weights exactly, logits to
// float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/half.h"
#include "core/thread_pool.h"
#include "formats/safetensors/safetensors.h"
#include "model/decoder.h"
#include "model/model.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/fp4.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using ember_test::SafetensorsBuilder;
using ember_test::StTensor;
using quant::Type;

enum class Layout { compressed_tensors, modelopt, modelopt_svd };

const std::string kKeptModule = "model.layers.1.mlp.down_proj";  // stays f16 (mixed precision)

std::string fixture() { return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/hf/qwen3"; }

std::vector<float> to_float(const safetensors::TensorInfo& t) {
  const Type type = t.dtype == safetensors::Dtype::F16 ? Type::F16 : t.dtype == safetensors::Dtype::BF16 ? Type::BF16 : Type::F32;
  std::vector<uint8_t> aligned(t.data, t.data + t.n_bytes);
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  quant::dequantize_row(type, aligned.data(), out.data(), t.n_elements);
  return out;
}

template <typename T>
StTensor st_raw(std::string name, std::string dtype, std::vector<int64_t> shape, const std::vector<T>& v) {
  StTensor t{std::move(name), std::move(dtype), std::move(shape), std::vector<uint8_t>(v.size() * sizeof(T)), ""};
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

// Quantizes W [n][k]; appends the layout's tensors to `q` and returns what they mean in f32
// (the weight an f32 checkpoint needs for the same outputs).
std::vector<float> quantize_module(const std::string& module, const std::vector<float>& w, int64_t n, int64_t k,
                                   Layout layout, std::mt19937& rng, std::vector<StTensor>& q) {
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  // A power of two, so that the divisor (compressed-tensors) and the multiplier (ModelOpt)
  // are exact reciprocals and both layouts mean the same f32 weights.
  const float g = std::exp2(std::ceil(std::log2(quant::nvfp4_global_scale(amax))));
  const int64_t nb = k / 16;
  std::vector<uint8_t> blocks(size_t(n * nb) * sizeof(quant::block_nvfp4)), packed, scales;
  for (int64_t r = 0; r < n; ++r) quant::quantize_row_nvfp4(&w[size_t(r * k)], &blocks[size_t(r * nb * 9)], k, g);
  const auto* b = reinterpret_cast<const quant::block_nvfp4*>(blocks.data());
  for (int64_t i = 0; i < n * nb; ++i) {
    scales.push_back(b[i].d);
    packed.insert(packed.end(), b[i].qs, b[i].qs + 8);
  }
  std::vector<float> deq(w.size());
  quant::dequantize_row_nvfp4(blocks.data(), deq.data(), n * k, g);
  q.push_back(st_raw(module + ".weight_scale", "F8_E4M3", {n, nb}, scales));
  if (layout == Layout::compressed_tensors) {
    q.push_back(st_raw(module + ".weight_packed", "U8", {n, k / 2}, packed));
    q.push_back(st_raw(module + ".weight_global_scale", "F32", {1}, std::vector<float>{1.0f / g}));
    q.push_back(st_raw(module + ".input_global_scale", "F32", {1}, std::vector<float>{3.0f}));  // unused
    return deq;
  }
  q.push_back(st_raw(module + ".weight", "U8", {n, k / 2}, packed));
  q.push_back(st_raw(module + ".weight_scale_2", "F32", {}, std::vector<float>{g}));
  q.push_back(st_raw(module + ".input_scale", "F32", {}, std::vector<float>{0.5f}));  // unused
  if (layout != Layout::modelopt_svd) return deq;
  // W_eff = (deq(W) + B·A) · diag(pqs): y = ((x⊙pqs)·deq(W)ᵀ) + ((x⊙pqs)·Aᵀ)·Bᵀ.
  const int64_t rank = 16;
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::uniform_real_distribution<float> ud(0.5f, 1.5f);
  std::vector<uint16_t> a(size_t(rank * k)), bb(size_t(n * rank));
  std::vector<float> pqs(static_cast<size_t>(k));
  for (auto& v : a) v = fp32_to_bf16(nd(rng));
  for (auto& v : bb) v = fp32_to_bf16(nd(rng));
  for (auto& v : pqs) v = ud(rng);
  for (int64_t o = 0; o < n; ++o)
    for (int64_t i = 0; i < k; ++i) {
      double s = deq[size_t(o * k + i)];
      for (int64_t r = 0; r < rank; ++r) s += double(bf16_to_fp32(bb[size_t(o * rank + r)])) * bf16_to_fp32(a[size_t(r * k + i)]);
      deq[size_t(o * k + i)] = float(s * pqs[size_t(i)]);
    }
  q.push_back(st_raw(module + ".svdquant_lora_a", "BF16", {rank, k}, a));
  q.push_back(st_raw(module + ".svdquant_lora_b", "BF16", {n, rank}, bb));
  q.push_back(st_raw(module + ".pre_quant_scale", "F32", {k}, pqs));
  return deq;
}

void copy_side_files(const fs::path& to, Layout layout, bool quantized) {
  for (const auto& e : fs::directory_iterator(fixture())) {
    const std::string f = e.path().filename().string();
    if (f != "config.json" && f.ends_with(".json") && f != "reference.json") fs::copy_file(e.path(), to / f);
  }
  std::ifstream in(fixture() + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  const nlohmann::json ignore = {"lm_head", kKeptModule};
  if (quantized && layout == Layout::compressed_tensors) {
    nlohmann::json group = {{"format", "nvfp4-pack-quantized"}, {"targets", {"Linear"}},
                            {"weights", {{"num_bits", 4}, {"type", "float"}, {"group_size", 16}}}};
    config["quantization_config"] = {{"quant_method", "compressed-tensors"}, {"format", "nvfp4-pack-quantized"},
                                     {"config_groups", {{"group_0", group}}}, {"ignore", ignore}};
  } else if (quantized) {
    const char* algo = layout == Layout::modelopt_svd ? "NVFP4_SVD" : "NVFP4";
    nlohmann::json q = {{"producer", {{"name", "modelopt"}}},
                        {"quantization", {{"quant_algo", algo}, {"group_size", 16}, {"exclude_modules", ignore}}}};
    ember_test::write_text(to / "hf_quant_config.json", q.dump(2));
  }
  ember_test::write_text(to / "config.json", config.dump(2));
}

// Writes <base>_q (quantized) and <base>_f32 (its dequantization) next to each other.
void make_pair(const fs::path& q_dir, const fs::path& f_dir, Layout layout) {
  auto ckpt = safetensors::Checkpoint::open(fixture());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  std::mt19937 rng(1234);
  SafetensorsBuilder q, f;
  for (const std::string& name : ckpt->tensor_names()) {
    const safetensors::TensorInfo& t = *ckpt->find_tensor(name);
    const std::vector<float> v = to_float(t);
    const std::string module = name.substr(0, name.size() - 7);
    if (name.starts_with("model.layers.") && name.ends_with("_proj.weight") && module != kKeptModule) {
      const auto deq = quantize_module(module, v, t.shape[0], t.shape[1], layout, rng, q.tensors);
      f.tensors.push_back(ember_test::st_f32(name, t.shape, deq));
    } else {
      q.tensors.push_back(StTensor{name, std::string(safetensors::dtype_name(t.dtype)), t.shape,
                                   std::vector<uint8_t>(t.data, t.data + t.n_bytes), ""});
      f.tensors.push_back(ember_test::st_f32(name, t.shape, v));
    }
  }
  for (const auto& [dir, b, quantized] : {std::tuple{q_dir, &q, true}, std::tuple{f_dir, &f, false}}) {
    fs::create_directories(dir);
    ember_test::write_file(dir / "model.safetensors", b->build());
    copy_side_files(dir, layout, quantized);
  }
}

std::vector<float> weight_values(const model::Linear& l) {
  std::vector<float> out(size_t(l.n_in * l.n_out));
  for (int64_t r = 0; r < l.n_out; ++r) quant::dequantize_row(l.type, l.row(r), &out[size_t(r * l.n_in)], l.n_in);
  for (float& v : out) v *= l.scale;
  return out;
}

std::vector<float> logits_of(const model::Model& m, const std::vector<int32_t>& ids) {
  model::CpuDecoder dec(m.spec, m.weights, 64, ThreadPool::global());
  std::vector<float> logits;
  const Status st = dec.forward(ids, 0, true, logits);
  EXPECT_TRUE(st.ok()) << st.message();
  return logits;
}

void check_layout(Layout layout, const std::string& label) {
  ember_test::TempDir tmp("nvfp4_" + label);
  make_pair(tmp.path() / "q", tmp.path() / "f32", layout);
  auto q = model::Model::load((tmp.path() / "q").string());
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto f = model::Model::load((tmp.path() / "f32").string());
  ASSERT_TRUE(f.ok()) << f.status().message();
  const auto& lq = (*q)->weights.layers;
  const auto& lf = (*f)->weights.layers;
  EXPECT_EQ(lq[0].wq.type, Type::NVFP4);
  EXPECT_EQ(lq[1].w_down.type, Type::F16);  // ignored / excluded: kept as stored
  EXPECT_EQ((*q)->weights.output.type, Type::F16);
  if (layout != Layout::modelopt_svd) {  // the quantized weights mean exactly the f32 ones
    for (size_t il = 0; il < lq.size(); ++il) {
      EXPECT_EQ(weight_values(lq[il].wq), weight_values(lf[il].wq)) << il;
      EXPECT_EQ(weight_values(lq[il].w_gate), weight_values(lf[il].w_gate)) << il;
      EXPECT_EQ(weight_values(lq[il].wo), weight_values(lf[il].wo)) << il;
    }
  } else {
    EXPECT_EQ(lq[0].wq.rank, 16);
    EXPECT_EQ(lq[0].wq.pre_quant_scale.size(), 64u);
  }
  const std::vector<int32_t> ids = {1, 5, 77, 300, 12, 511, 9, 42};
  const auto yq = logits_of(**q, ids), yf = logits_of(**f, ids);
  ASSERT_EQ(yq.size(), yf.size());
  double max_err = 0, max_abs = 0;
  for (size_t i = 0; i < yq.size(); ++i) {
    max_err = std::max(max_err, double(std::fabs(yq[i] - yf[i])));
    max_abs = std::max(max_abs, double(std::fabs(yf[i])));
  }
  std::printf("%s: max |logit diff| %.2e (max |logit| %.2f)\n", label.c_str(), max_err, max_abs);
  EXPECT_LT(max_err, 1e-4 * std::max(1.0, max_abs));
}

TEST(HfNvfp4, CompressedTensorsEqualsItsDequantization) { check_layout(Layout::compressed_tensors, "ct"); }
TEST(HfNvfp4, ModelOptEqualsItsDequantization) { check_layout(Layout::modelopt, "modelopt"); }
TEST(HfNvfp4, ModelOptSvdEqualsItsDequantization) { check_layout(Layout::modelopt_svd, "modelopt_svd"); }

// A packed weight whose checkpoint declares no NVFP4 is refused with the tensor named.
TEST(HfNvfp4, PackedWithoutConfigIsRefused) {
  ember_test::TempDir tmp("nvfp4_noconfig");
  make_pair(tmp.path() / "q", tmp.path() / "f32", Layout::modelopt);
  fs::remove(tmp.path() / "q" / "hf_quant_config.json");
  auto m = model::Model::load((tmp.path() / "q").string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("weight"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("no quantization"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace ember
