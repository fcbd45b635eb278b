#include "model/forward_batch.h"

namespace ember::model {

void ForwardBatch::clear() {
  tokens.clear();
  positions.clear();
  seq_of.clear();
  table_start.clear();
  block_tables.clear();
  logit_rows.clear();
  slots.clear();
}

int ForwardBatch::add_sequence(std::span<const int32_t> seq_tokens, int pos, std::span<const int32_t> block_table,
                               bool want_logits) {
  const int seq = n_seqs();
  table_start.push_back(int32_t(block_tables.size()));
  block_tables.insert(block_tables.end(), block_table.begin(), block_table.end());
  for (size_t i = 0; i < seq_tokens.size(); ++i) {
    tokens.push_back(seq_tokens[i]);
    positions.push_back(pos + int32_t(i));
    seq_of.push_back(seq);
  }
  if (want_logits && !seq_tokens.empty()) logit_rows.push_back(n_tokens() - 1);
  return seq;
}

Status ForwardBatch::plan(int block_size, int n_blocks) {
  if (block_size <= 0) return make_error(ErrorKind::invalid_argument, "forward batch: block size {}", block_size);
  slots.resize(tokens.size());
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int seq = seq_of[t];
    if (seq < 0 || seq >= n_seqs() || positions[t] < 0)
      return make_error(ErrorKind::invalid_argument, "forward batch: token {} has sequence {} at position {}", t, seq,
                        positions[t]);
    const size_t end = seq + 1 < n_seqs() ? size_t(table_start[size_t(seq) + 1]) : block_tables.size();
    const size_t index = size_t(table_start[size_t(seq)]) + size_t(positions[t] / block_size);
    if (index >= end)
      return make_error(ErrorKind::invalid_argument, "forward batch: position {} of sequence {} is past its {} blocks",
                        positions[t], seq, end - size_t(table_start[size_t(seq)]));
    const int32_t block = block_tables[index];
    if (block < 0 || block >= n_blocks)
      return make_error(ErrorKind::invalid_argument, "forward batch: block id {} is outside the pool of {}", block,
                        n_blocks);
    slots[t] = int64_t(block) * block_size + positions[t] % block_size;
  }
  for (int32_t row : logit_rows)
    if (row < 0 || row >= n_tokens())
      return make_error(ErrorKind::invalid_argument, "forward batch: logit row {} of {} tokens", row, n_tokens());
  return {};
}

}  // namespace ember::model
