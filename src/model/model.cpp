#include "model/model.h"

#include "model/archs/arch.h"

namespace ember::model {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto file = gguf::File::open(path);
  if (!file) return file.status();
  auto spec = spec_from_gguf(*file);
  if (!spec) return spec.status();
  auto tokenizer = tok::Tokenizer::from_gguf(*file);
  if (!tokenizer) return tokenizer.status();
  if (tokenizer->n_vocab() > spec->n_vocab)
    return make_error(ErrorKind::invalid_file, "{}: tokenizer has {} tokens but the embedding only {} rows", path,
                      tokenizer->n_vocab(), spec->n_vocab);
  auto m = std::make_unique<Model>(Model{std::move(*file), std::move(*spec), {}, std::move(*tokenizer), {}});
  auto weights = load_weights(m->file, m->spec);  // views into m->file's mapping
  if (!weights) return weights.status();
  m->weights = std::move(*weights);
  if (const std::string* t = m->file.get_string("tokenizer.chat_template")) m->chat_template = *t;
  return m;
}

}  // namespace ember::model
