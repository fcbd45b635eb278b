// A loaded model: the mapped GGUF file, its spec, weight views and tokenizer.
#pragma once
#include <memory>
#include <string>

#include "core/status.h"
#include "formats/gguf/gguf.h"
#include "model/spec.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace ember::model {

struct Model {
  gguf::File file;
  ModelSpec spec;
  Weights weights;
  tok::Tokenizer tokenizer;
  std::string chat_template;  // tokenizer.chat_template, empty when absent

  static Expected<std::unique_ptr<Model>> load(const std::string& path);
};

}  // namespace ember::model
