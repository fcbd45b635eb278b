// The pair-merging loop shared by SentencePiece-style and byte-level BPE encoding: adjacent
// symbols merge, best candidate first (ties go to the leftmost pair), until no pair can.
#pragma once
#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace ember::tok {

struct MergeSymbol {
  int32_t id;      // token id, or -1 when the symbol is not a token
  uint32_t begin;  // byte range in the encoded text
  uint32_t end;
  int32_t prev;    // neighbours in the list, -1 at the ends
  int32_t next;
};

struct MergeCandidate {
  double cost;  // lower merges first
  int32_t merged;
};

// find(left, right) -> std::optional<MergeCandidate>. Symbols absorbed into their left
// neighbour are left with begin == end; walk the result from index 0 through `next`.
template <typename FindMerge>
void merge_symbols(std::vector<MergeSymbol>& symbols, FindMerge&& find) {
  struct Entry {
    double cost;
    uint32_t left_begin;
    int32_t left;
    int32_t right;
    uint32_t right_end;
    int32_t merged;
    bool operator<(const Entry& o) const {  // priority_queue pops the largest
      if (cost != o.cost) return cost > o.cost;
      return left_begin > o.left_begin;
    }
  };
  std::priority_queue<Entry> queue;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const MergeSymbol& l = symbols[left];
    const MergeSymbol& r = symbols[right];
    if (std::optional<MergeCandidate> c = find(l, r))
      queue.push({c->cost, l.begin, left, right, r.end, c->merged});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) consider(int32_t(i), int32_t(i + 1));
  while (!queue.empty()) {
    const Entry e = queue.top();
    queue.pop();
    MergeSymbol& l = symbols[e.left];
    MergeSymbol& r = symbols[e.right];
    // Stale when either side has changed since the candidate was queued.
    if (l.next != e.right || r.begin == r.end || r.end != e.right_end || l.begin != e.left_begin) continue;
    l.end = r.end;
    l.id = e.merged;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = e.left;
    r.begin = r.end;
    r.prev = r.next = -1;
    consider(l.prev, e.left);
    consider(e.left, l.next);
  }
}

}  // namespace ember::tok
