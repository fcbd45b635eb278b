#include "model/spec.h"

#include <algorithm>

namespace ember::model {

int ModelSpec::max_head_dim() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.head_dim);
  return m;
}

int ModelSpec::max_q_width() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.n_heads * l.head_dim);
  return m;
}

bool ModelSpec::has_moe() const {
  for (const auto& l : layers)
    if (l.ffn != FfnKind::dense) return true;
  return false;
}

int ModelSpec::max_kv_width() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.n_kv_heads * l.head_dim);
  return m;
}

}  // namespace ember::model
