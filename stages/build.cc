#include "stages/build.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "stages/batches.h"

namespace sf::stages {

int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress) {
  std::vector<faiss::Index::idx_t> ids;
  for_each_batch(
      corpus, range, batch_rows,
      [&](int64_t first, int64_t count, const float* x) {
        ids.resize(static_cast<size_t>(count));
        std::iota(ids.begin(), ids.end(), first);
        // One add per global block: the same matrix shapes as with any other rank count.
        for (int64_t off = 0; off < count;) {
          const int64_t n = std::min(count - off, kBlockRows - (first + off) % kBlockRows);
          index.add_with_ids(n, x + off * corpus.dim(), ids.data() + off);
          off += n;
        }
      },
      progress, "build: add");
  return range.size();
}

}  // namespace sf::stages
