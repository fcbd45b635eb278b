#include "model/model.h"

#include <filesystem>

#include "model/archs/arch.h"
#include "model/archs/hf.h"

namespace ember::model {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path) {
  std::error_code ec;
  if (hf::is_model_dir(path) || std::filesystem::is_directory(path, ec)) return load_hf(path);
  return load_gguf(path);
}

Expected<std::unique_ptr<Model>> Model::load_gguf(const std::string& path) {
  auto file = gguf::File::open(path);
  if (!file) return file.status();
  auto spec = spec_from_gguf(*file);
  if (!spec) return spec.status();
  auto tokenizer = tok::Tokenizer::from_gguf(*file);
  if (!tokenizer) return tokenizer.status();
  if (tokenizer->n_vocab() > spec->n_vocab)
    return make_error(ErrorKind::invalid_file, "{}: tokenizer has {} tokens but the embedding only {} rows", path,
                      tokenizer->n_vocab(), spec->n_vocab);
  auto m = std::make_unique<Model>(Model{std::move(*file), std::move(*spec), {}, std::move(*tokenizer), {}, {}, {}});
  auto weights = load_weights(m->file, m->spec);  // views into m->file's mapping
  if (!weights) return weights.status();
  m->weights = std::move(*weights);
  if (const std::string* t = m->file.get_string("tokenizer.chat_template")) m->chat_template = *t;
  return m;
}

Expected<std::unique_ptr<Model>> Model::load_hf(const std::string& path) {
  auto dir = hf::resolve_model_dir(path);
  if (!dir) return dir.status();
  auto config = hf::read_config(*dir);
  if (!config) return config.status();
  auto spec = spec_from_hf(*config);
  if (!spec) return spec.status();
  auto generation = hf::read_generation_config(*dir);
  if (!generation) return generation.status();
  auto source = hf::read_tokenizer_source(*dir);
  if (!source) return source.status();
  auto tokenizer = tok::Tokenizer::from_hf(*source);
  if (!tokenizer) return tokenizer.status();
  if (tokenizer->n_vocab() > spec->spec.n_vocab)
    return make_error(ErrorKind::invalid_file, "{}: tokenizer has {} tokens but vocab_size is only {}", *dir,
                      tokenizer->n_vocab(), spec->spec.n_vocab);
  auto quant = hf::read_quant_config(*config);
  if (!quant) return quant.status();
  auto checkpoint = safetensors::Checkpoint::open(*dir);
  if (!checkpoint) return checkpoint.status();
  auto tensors = HfTensors::build(std::move(*checkpoint), *spec, *quant);
  if (!tensors) return tensors.status();
  auto weights = load_weights(**tensors, spec->spec);
  if (!weights) return weights.status();
  EMBER_RETURN_IF_ERROR((*tensors)->apply_extras(*weights));  // NVFP4 global scales, low-rank branches
  if (spec->norm_plus_one) add_one_to_norms(*weights);
  return std::make_unique<Model>(Model{{}, std::move(spec->spec), std::move(*weights), std::move(*tokenizer),
                                       source->config.chat_template, std::move(*tensors), std::move(*generation)});
}

}  // namespace ember::model
