// What the duplicate clusters share (exact.cc, near.cc; see stages/dedup/clusters.h): who
// owns a key or a row, fetching rows' payloads from their owners, sorting records, and the
// input checks. Not for callers, who include stages/dedup/clusters.h.
//
// Every step is local work followed by one Comm::alltoallv. Records keyed by a hash go to
// owner(hash); records about a document go to the rank whose row range holds it. Before a
// keyed shuffle each rank combines its own records per key, so a key shared by a million
// documents costs its owner one record per contributing rank.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cluster/comm.h"
#include "stages/dedup/clusters.h"
#include "stages/mix64.h"

namespace sf::stages::dedup::detail {

using cluster::Bytes;
using cluster::Comm;
using cluster::RowRange;

// ---- shuffles of plain records ------------------------------------------------------------

using cluster::exchange;

using stages::mix64;

inline int key_owner(uint64_t key, int ranks) { return static_cast<int>(mix64(key) % ranks); }

inline int64_t global_max(Comm& comm, int64_t value) { return -comm.min(-value); }

// Which rank holds a row: the ranks' ranges, gathered once. Collective to build.
class RowOwners {
 public:
  RowOwners(Comm& comm, RowRange mine) {
    Bytes bytes(sizeof(RowRange));
    std::memcpy(bytes.data(), &mine, sizeof mine);
    const std::vector<Bytes> all = comm.allgather(bytes);
    std::string problem;
    int64_t previous_end = std::numeric_limits<int64_t>::min();
    for (size_t r = 0; r < all.size(); ++r) {
      RowRange range;
      std::memcpy(&range, all[r].data(), sizeof range);
      if (range.begin < 0 || range.end < range.begin) {
        problem = "rank " + std::to_string(r) + " has an invalid row range [" +
                  std::to_string(range.begin) + ", " + std::to_string(range.end) + ")";
        break;
      }
      if (range.size() == 0) continue;
      if (range.begin < previous_end) {
        problem = "row ranges overlap or do not increase with rank (rank " + std::to_string(r) +
                  " starts at " + std::to_string(range.begin) + ")";
        break;
      }
      previous_end = range.end;
      begins_.push_back(static_cast<uint64_t>(range.begin));
      ends_.push_back(static_cast<uint64_t>(range.end));
      ranks_.push_back(static_cast<int>(r));
    }
    cluster::run_local_phase(comm, "dedup: row ranges", [&] {
      if (!problem.empty()) throw std::invalid_argument(problem);
    });
  }
  int owner(uint64_t row) const {
    const size_t k = static_cast<size_t>(
        std::upper_bound(begins_.begin(), begins_.end(), row) - begins_.begin());
    if (k == 0 || row >= ends_[k - 1])
      throw std::logic_error("dedup: row " + std::to_string(row) + " lies in no rank's range");
    return ranks_[k - 1];
  }

 private:
  std::vector<uint64_t> begins_, ends_;
  std::vector<int> ranks_;
};

// Local index of `row` in `docs` (sorted by row).
inline size_t local_index(const std::vector<DocRef>& docs, uint64_t row) {
  const auto it = std::lower_bound(docs.begin(), docs.end(), row,
                                   [](const DocRef& d, uint64_t r) { return d.row < r; });
  if (it == docs.end() || it->row != row)
    throw std::logic_error("dedup: row " + std::to_string(row) + " is not on this rank");
  return static_cast<size_t>(it - docs.begin());
}

// Keep policy: the larger keep_score wins, ties -> the smaller row.
inline bool keeps_over(double score_a, uint64_t row_a, double score_b, uint64_t row_b) {
  return score_a > score_b || (score_a == score_b && row_a < row_b);
}

// The payload of each requested row, in the order of the request.
struct Fetched {
  Bytes data;
  std::vector<size_t> begin;  // rows + 1 offsets into data
  const char* at(size_t k) const { return data.data() + begin[k]; }
  size_t size(size_t k) const { return begin[k + 1] - begin[k]; }
};

// Collective: for each of `rows` (sorted, unique; rows of documents on any rank) returns the
// payload its owner writes with encode(local index, out).
Fetched fetch(Comm& comm, const RowOwners& owners, const std::vector<DocRef>& docs,
              const std::vector<uint64_t>& rows,
              const std::function<void(size_t, Bytes&)>& encode);

// Collective: the label (a row) of each of `rows`, from their owners.
std::vector<uint64_t> fetch_labels(Comm& comm, const RowOwners& owners,
                                   const std::vector<DocRef>& docs,
                                   const std::vector<uint64_t>& labels,
                                   const std::vector<uint64_t>& rows);

// Stable LSD radix sort of `items` by key(item) (uint64), 16 bits a pass; `scratch` is reused.
template <class T, class Key>
void radix_sort(std::vector<T>& items, std::vector<T>& scratch, Key key) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (items.size() < 2048) {
    std::stable_sort(items.begin(), items.end(),
                     [&](const T& a, const T& b) { return key(a) < key(b); });
    return;
  }
  scratch.resize(items.size());
  std::vector<size_t> count(1 << 16);
  for (int shift = 0; shift < 64; shift += 16) {
    std::fill(count.begin(), count.end(), 0);
    for (const T& x : items) ++count[(key(x) >> shift) & 0xffff];
    size_t sum = 0;
    for (size_t& c : count) {
      const size_t here = c;
      c = sum;
      sum += here;
    }
    for (const T& x : items) scratch[count[(key(x) >> shift) & 0xffff]++] = x;
    items.swap(scratch);
  }
}

// Merges the sorted runs items[bounds[k], bounds[k+1]) into one sorted range, in place.
template <class T, class Less>
void merge_runs(std::vector<T>& items, std::vector<size_t> bounds, Less less) {
  while (bounds.size() > 2) {
    std::vector<size_t> next = {bounds[0]};
    for (size_t k = 0; k + 2 < bounds.size(); k += 2) {
      std::inplace_merge(items.begin() + static_cast<std::ptrdiff_t>(bounds[k]),
                         items.begin() + static_cast<std::ptrdiff_t>(bounds[k + 1]),
                         items.begin() + static_cast<std::ptrdiff_t>(bounds[k + 2]), less);
      next.push_back(bounds[k + 2]);
    }
    if (bounds.size() % 2 == 0) next.push_back(bounds.back());
    bounds.swap(next);
  }
}

inline void sort_unique(std::vector<uint64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

inline size_t position(const std::vector<uint64_t>& sorted, uint64_t value) {
  return static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), value) -
                             sorted.begin());
}

// Throws std::invalid_argument when `docs` break the contract of clusters.h on `range`.
void check_docs(RowRange range, const std::vector<DocRef>& docs);

}  // namespace sf::stages::dedup::detail
