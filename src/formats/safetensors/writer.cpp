// safetensors writer (writer.h): header JSON padded to 8 bytes, tensors by element size.
#include "formats/safetensors/writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

namespace ember::safetensors {
namespace {

using json = nlohmann::ordered_json;

Status write_all(const std::string& path, const std::vector<std::pair<const uint8_t*, size_t>>& parts) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return make_error(ErrorKind::io, "{}: cannot create: {}", tmp, std::strerror(errno));
  for (const auto& [data, size] : parts)
    if (size > 0 && std::fwrite(data, 1, size, f) != size) {
      std::fclose(f);
      return make_error(ErrorKind::io, "{}: write failed: {}", tmp, std::strerror(errno));
    }
  if (std::fclose(f) != 0) return make_error(ErrorKind::io, "{}: close failed: {}", tmp, std::strerror(errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error(ErrorKind::io, "{}: cannot rename to {}: {}", tmp, path, ec.message());
  return {};
}

}  // namespace

Status Writer::add(std::string name, Dtype dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  if (name.empty() || name == "__metadata__")
    return make_error(ErrorKind::invalid_argument, "safetensors writer: bad tensor name '{}'", name);
  if (index_.count(name) != 0)
    return make_error(ErrorKind::invalid_argument, "safetensors writer: tensor '{}' added twice", name);
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && count > std::numeric_limits<uint64_t>::max() / uint64_t(d) / 8))
      return make_error(ErrorKind::invalid_argument, "safetensors writer: tensor '{}' has a bad dimension {}", name, d);
    count *= uint64_t(d);
  }
  if (count * dtype_size(dtype) != bytes.size())
    return make_error(ErrorKind::invalid_argument, "safetensors writer: tensor '{}' ({}) needs {} bytes, got {}", name,
                      dtype_name(dtype), count * dtype_size(dtype), bytes.size());
  index_[name] = tensors_.size();
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(bytes)});
  return {};
}

uint64_t Writer::n_bytes() const {
  uint64_t total = 0;
  for (const Entry& e : tensors_) total += e.bytes.size();
  return total;
}

std::vector<const Writer::Entry*> Writer::layout_order() const {
  std::vector<const Entry*> order;
  for (const Entry& e : tensors_) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  return order;
}

Status Writer::write_entries(const std::string& path, const std::vector<const Entry*>& entries) const {
  json header = json::object();
  if (!metadata_.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const Entry* e : entries) {
    header[e->name] = {{"dtype", std::string(dtype_name(e->dtype))},
                       {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->bytes.size()}}};
    offset += e->bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data region starts 8-byte aligned
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  std::vector<std::pair<const uint8_t*, size_t>> parts = {{length, 8},
                                                          {reinterpret_cast<const uint8_t*>(text.data()), text.size()}};
  for (const Entry* e : entries) parts.emplace_back(e->bytes.data(), e->bytes.size());
  return write_all(path, parts);
}

Status Writer::write_file(const std::string& path) const { return write_entries(path, layout_order()); }

Status Writer::write_dir(const std::string& dir, uint64_t max_shard_bytes) const {
  namespace fs = std::filesystem;
  const std::vector<const Entry*> order = layout_order();
  std::vector<std::vector<const Entry*>> shards(1);
  uint64_t in_shard = 0;
  for (const Entry* e : order) {
    if (max_shard_bytes > 0 && in_shard > 0 && in_shard + e->bytes.size() > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(e);
    in_shard += e->bytes.size();
  }
  if (shards.size() == 1) return write_entries((fs::path(dir) / "model.safetensors").string(), order);
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = fmt::format("model-{:05}-of-{:05}.safetensors", i + 1, shards.size());
    // Within a shard the order stays by element size, so alignment holds per file.
    EMBER_RETURN_IF_ERROR(write_entries((fs::path(dir) / name).string(), shards[i]));
    for (const Entry* e : shards[i]) weight_map[e->name] = name;
  }
  json index = {{"metadata", {{"total_size", n_bytes()}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  return write_all((fs::path(dir) / "model.safetensors.index.json").string(),
                   {{reinterpret_cast<const uint8_t*>(text.data()), text.size()}});
}

}  // namespace ember::safetensors
