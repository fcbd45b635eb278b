// Architecture registry: each architecture maps its GGUF config keys to a ModelSpec.
// Tensor names are GGUF's standard ones (weights.cpp); an architecture only says which
// optional tensors it has through the spec's flags.
#pragma once
#include <string_view>

#include "core/status.h"
#include "formats/gguf/gguf.h"
#include "model/spec.h"

namespace ember::model {

// Reads "<arch>.<key>" metadata with clear errors for missing or out-of-range values.
class ArchKeys {
 public:
  ArchKeys(const gguf::File& file, std::string arch) : file_(file), arch_(std::move(arch)) {}
  Expected<int64_t> int_key(std::string_view key, int64_t lo, int64_t hi) const;  // required
  Expected<int64_t> int_key_or(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const;
  Expected<double> float_key_or(std::string_view key, double fallback, double lo, double hi) const;
  const gguf::File& file() const { return file_; }
  const std::string& arch() const { return arch_; }

 private:
  const gguf::File& file_;
  std::string arch_;
};

// Fields shared by all supported architectures (block_count, embedding_length, heads...).
Expected<ModelSpec> common_spec(const ArchKeys& keys);

Expected<ModelSpec> llama_spec(const ArchKeys& keys);   // llama, mistral, qwen2, qwen3, qwen2moe, qwen3moe
// Mixture-of-experts keys (expert_count, ...; archs/moe.cpp): sets spec.moe and marks the
// layers that have a router as FfnKind::moe. No expert_count: nothing changes.
Status read_moe_gguf(const ArchKeys& keys, ModelSpec& spec);
Expected<ModelSpec> gemma3_spec(const ArchKeys& keys);  // gemma3
Expected<ModelSpec> gemma4_spec(const ArchKeys& keys);  // gemma4 (archs/gemma4.cpp)

// Dispatches on general.architecture.
Expected<ModelSpec> spec_from_gguf(const gguf::File& file);

}  // namespace ember::model
