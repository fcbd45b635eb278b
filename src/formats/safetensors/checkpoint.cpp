// Checkpoint: one safetensors file or the shards of model.safetensors.index.json.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/safetensors/safetensors.h"

namespace ember::safetensors {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxShards = 100000;
constexpr std::string_view kIndexName = "model.safetensors.index.json";
constexpr std::string_view kSingleName = "model.safetensors";

// At most NAME_MAX (255) bytes: a longer name cannot exist, and opening it fails as an
// I/O error (ENAMETOOLONG) instead of naming the bad index entry.
bool is_plain_file_name(std::string_view s) {
  return !s.empty() && s.size() <= 255 && s != "." && s != ".." && s.find('/') == std::string_view::npos &&
         s.find('\\') == std::string_view::npos && s.find('\0') == std::string_view::npos;
}

}  // namespace

Expected<std::map<std::string, std::string>> parse_index(std::string_view text, const std::string& name) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return make_error(ErrorKind::invalid_file, "{}: not a JSON object", name);
  const auto wm = doc.find("weight_map");
  if (wm == doc.end() || !wm->is_object())
    return make_error(ErrorKind::invalid_file, "{}: missing object 'weight_map'", name);
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return make_error(ErrorKind::invalid_file, "{}: weight_map['{}'] is not a file name string", name, it.key());
    const std::string shard = it.value().get<std::string>();
    if (!is_plain_file_name(shard))
      return make_error(ErrorKind::invalid_file, "{}: weight_map['{}'] = '{}' is not a plain file name in the same folder",
                        name, it.key(), shard);
    out.emplace(it.key(), shard);
  }
  if (out.empty()) return make_error(ErrorKind::invalid_file, "{}: weight_map is empty", name);
  return out;
}

Expected<Checkpoint> Checkpoint::open(const std::string& path) {
  std::error_code ec;
  std::string target = path;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::is_regular_file(dir / kIndexName, ec)) target = (dir / kIndexName).string();
    else if (fs::is_regular_file(dir / kSingleName, ec)) target = (dir / kSingleName).string();
    else
      return make_error(ErrorKind::not_found, "{}: neither {} nor {} found", path, kIndexName, kSingleName);
  }
  Checkpoint c;
  c.name_ = target;
  if (!target.ends_with(".json")) {
    auto f = File::open(target);
    if (!f) return f.status();
    c.files_.push_back(std::make_unique<File>(std::move(*f)));
    for (const TensorInfo& t : c.files_[0]->tensors()) c.index_.emplace(t.name, &t);
    return c;
  }
  auto text = MappedFile::open(target);
  if (!text) return text.status();
  auto map = parse_index(std::string_view(reinterpret_cast<const char*>(text->data()), text->size()), target);
  if (!map) return map.status();
  std::map<std::string, File*> shards;
  for (const auto& [tensor, shard] : *map) shards.emplace(shard, nullptr);
  if (shards.size() > kMaxShards)
    return make_error(ErrorKind::invalid_file, "{}: {} shards is too many", target, shards.size());
  const fs::path dir = fs::path(target).parent_path();
  for (auto& [shard, file] : shards) {
    auto f = File::open((dir / shard).string());
    if (!f) return f.status();
    c.files_.push_back(std::make_unique<File>(std::move(*f)));
    file = c.files_.back().get();
  }
  for (const auto& [tensor, shard] : *map) {
    const TensorInfo* t = shards[shard]->find_tensor(tensor);
    if (t == nullptr)
      return make_error(ErrorKind::invalid_file, "{}: weight_map puts tensor '{}' in {}, which does not hold it", target,
                        tensor, shard);
    c.index_.emplace(tensor, t);
  }
  return c;
}

const TensorInfo* Checkpoint::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, t] : index_) names.push_back(name);
  return names;
}

uint64_t Checkpoint::n_bytes() const {
  uint64_t total = 0;
  for (const auto& f : files_) total += f->file_size();
  return total;
}

}  // namespace ember::safetensors
