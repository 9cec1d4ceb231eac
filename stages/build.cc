#include "stages/build.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "stages/batches.h"

namespace sf::stages {

std::vector<cluster::RowRange> split_rows(cluster::RowRange range, int64_t unit_rows) {
  unit_rows = std::max<int64_t>(1, (unit_rows + kBlockRows - 1) / kBlockRows) * kBlockRows;
  std::vector<cluster::RowRange> units;
  for (int64_t row = range.begin; row < range.end;) {
    const int64_t end = std::min((row / unit_rows + 1) * unit_rows, range.end);
    units.push_back({row, end});
    row = end;
  }
  return units;
}

void add_rows(faiss::Index& index, int64_t first, int64_t count, const float* x) {
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(count));
  std::iota(ids.begin(), ids.end(), first);
  // One add per global block: the same matrix shapes as with any other rank count.
  for (int64_t off = 0; off < count;) {
    const int64_t n = std::min(count - off, kBlockRows - (first + off) % kBlockRows);
    index.add_with_ids(n, x + off * index.d, ids.data() + off);
    off += n;
  }
}

int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress) {
  for_each_batch(
      corpus, range, batch_rows,
      [&](int64_t first, int64_t count, const float* x) { add_rows(index, first, count, x); },
      progress, "build: add");
  return range.size();
}

}  // namespace sf::stages
