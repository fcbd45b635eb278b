#include "kv/kv_storage.h"

#include <unistd.h>

#include <new>

namespace ember::kv {

size_t KvStorage::bytes_per_token(const std::vector<int>& kv_widths) {
  size_t total = 0;
  for (int w : kv_widths) total += 2 * size_t(w) * sizeof(float);
  return total;
}

Expected<KvStorage> KvStorage::create(const std::vector<int>& kv_widths, int n_blocks, int block_size) {
  if (n_blocks <= 0 || block_size <= 0)
    return make_error(ErrorKind::invalid_argument, "KV cache: {} blocks of {} tokens is not a cache", n_blocks,
                      block_size);
  const double bytes = double(bytes_per_token(kv_widths)) * n_blocks * block_size;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0 && bytes > 0.9 * double(pages) * double(page))
    return make_error(ErrorKind::out_of_memory,
                      "KV cache: {} blocks of {} tokens take {:.2f} GiB, more than this machine's memory ({:.2f} GiB)",
                      n_blocks, block_size, bytes / double(1ull << 30),
                      double(pages) * double(page) / double(1ull << 30));
  KvStorage s;
  s.n_blocks_ = n_blocks;
  s.block_size_ = block_size;
  try {
    for (int w : kv_widths) {
      const size_t n = size_t(n_blocks) * size_t(block_size) * size_t(w);
      s.k_.emplace_back(n, 0.0f);
      s.v_.emplace_back(n, 0.0f);
    }
  } catch (const std::bad_alloc&) {
    return make_error(ErrorKind::out_of_memory, "KV cache: cannot allocate {} blocks of {} tokens ({:.2f} GiB)",
                      n_blocks, block_size,
                      double(bytes_per_token(kv_widths)) * n_blocks * block_size / double(1ull << 30));
  }
  return s;
}

size_t KvStorage::n_bytes() const {
  size_t total = 0;
  for (size_t i = 0; i < k_.size(); ++i) total += (k_[i].size() + v_[i].size()) * sizeof(float);
  return total;
}

}  // namespace ember::kv
