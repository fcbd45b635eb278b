// Gemma3ForConditionalGeneration: the text model inside a multimodal checkpoint
// (config.text_config, tensors under model.language_model.*), built here from the gemma3
// fixture by renaming its tensors and adding a vision tensor the decoder must ignore.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "formats/safetensors/safetensors.h"
#include "model/archs/hf.h"
#include "model/decoder.h"
#include "model/model.h"
#include "unit/formats/safetensors_builder.h"

namespace ember {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TEST(HfMultimodal, Gemma3TextModelInsideConditionalGeneration) {
  const fs::path src = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/hf/gemma3";
  ember_test::TempDir dir("hf_gemma3_mm");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(src / f, dir.path() / f);
  const json text_config = json::parse(std::ifstream(src / "config.json"));
  json config = {{"architectures", {"Gemma3ForConditionalGeneration"}},
                 {"model_type", "gemma3"},
                 {"text_config", text_config},
                 {"vision_config", {{"model_type", "siglip_vision_model"}}}};
  ember_test::write_text(dir.path() / "config.json", config.dump());

  auto original = safetensors::Checkpoint::open(src.string());
  ASSERT_TRUE(original.ok()) << original.status().message();
  ember_test::SafetensorsBuilder b;
  for (const std::string& name : original->tensor_names()) {
    const auto* t = original->find_tensor(name);
    ember_test::StTensor st{"model.language_model." + name.substr(6), std::string(safetensors::dtype_name(t->dtype)),
                            t->shape, std::vector<uint8_t>(t->data, t->data + t->n_bytes), ""};
    b.tensors.push_back(std::move(st));
  }
  b.tensors.push_back(ember_test::st_tensor("model.vision_tower.patch_embedding.weight", "BF16", {4, 3}));
  ember_test::write_file(dir.path() / "model.safetensors", b.build());

  auto mm = model::Model::load(dir.str());
  ASSERT_TRUE(mm.ok()) << mm.status().message();
  auto plain = model::Model::load(src.string());
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ((*mm)->hf_tensors->n_ignored(), 1u);
  const std::vector<int32_t> ids = (*plain)->tokenizer.encode("The lighthouse keeper said hello.", true, true);
  std::vector<float> a, c;
  model::CpuDecoder da((*mm)->spec, (*mm)->weights, 64, ThreadPool::global());
  model::CpuDecoder dc((*plain)->spec, (*plain)->weights, 64, ThreadPool::global());
  ASSERT_TRUE(da.forward(ids, 0, true, a).ok());
  ASSERT_TRUE(dc.forward(ids, 0, true, c).ok());
  EXPECT_EQ(a, c);
}

}  // namespace
}  // namespace ember
