#include "cli/dump.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

namespace ember::cli {

namespace {

struct Dumper {
  std::string dir;
  std::set<int> layers;
  std::map<std::string, std::FILE*> files;
  std::FILE* index = nullptr;

  ~Dumper() {
    for (auto& [name, f] : files) std::fclose(f);
    if (index) std::fclose(index);
  }

  void write(std::string_view name, int il, const float* data, int n_tokens, int width) {
    if (il >= 0 && !layers.empty() && !layers.count(il)) return;
    const std::string file = il >= 0 ? fmt::format("{}.L{}.f32", name, il) : fmt::format("{}.f32", name);
    std::FILE*& f = files[file];
    if (f == nullptr) {
      f = std::fopen((dir + "/" + file).c_str(), "wb");
      if (f == nullptr) return;  // reported once at the end by the missing file; never abort a run
      if (index) std::fprintf(index, "%s\t%d\t%d\n", std::string(name).c_str(), il, width);
    }
    std::fwrite(data, sizeof(float), size_t(n_tokens) * size_t(width), f);
    std::fflush(f);
  }
};

}  // namespace

Expected<model::DumpFn> make_tensor_dumper(const std::string& dir, std::set<int> layers) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorKind::invalid_argument, "--dump-tensors {}: {}", dir, ec.message());
  auto d = std::make_shared<Dumper>();
  d->dir = dir;
  d->layers = std::move(layers);
  d->index = std::fopen((dir + "/index.tsv").c_str(), "w");
  if (d->index == nullptr) return make_error(ErrorKind::invalid_argument, "--dump-tensors {}: cannot write there", dir);
  std::fprintf(d->index, "name\tlayer\twidth\n");
  return model::DumpFn([d](std::string_view name, int il, const float* data, int n, int width) {
    d->write(name, il, data, n, width);
  });
}

}  // namespace ember::cli
