#include "stages/batches.h"

#include <algorithm>
#include <cstring>

namespace sf::stages {

void for_each_batch(io::VectorCorpus& corpus, cluster::RowRange range, int64_t batch_rows,
                    const std::function<void(int64_t, int64_t, const float*)>& visit,
                    const ProgressFn& progress, const std::string& step) {
  const int d = corpus.dim();
  batch_rows = std::max<int64_t>(1, (batch_rows + kBlockRows - 1) / kBlockRows) * kBlockRows;
  std::vector<float> buffer;
  int64_t row = range.begin;
  while (row < range.end) {
    const int64_t next_edge = (row / batch_rows + 1) * batch_rows;
    const int64_t count = std::min(next_edge, range.end) - row;
    buffer.resize(static_cast<size_t>(count) * d);
    corpus.read(row, count, buffer.data());
    visit(row, count, buffer.data());
    row += count;
    report(progress, step, row - range.begin, range.size());
  }
}

void read_selected_rows(io::VectorCorpus& corpus, const std::vector<int64_t>& sorted_ids,
                        float* out) {
  // Ids closer than this are read as one run (reading a few unused rows beats a seek).
  constexpr int64_t kMaxGap = 32;
  const int d = corpus.dim();
  std::vector<float> run;
  size_t i = 0;
  while (i < sorted_ids.size()) {
    size_t j = i + 1;
    while (j < sorted_ids.size() && sorted_ids[j] - sorted_ids[j - 1] <= kMaxGap &&
           sorted_ids[j] - sorted_ids[i] < 65536)
      ++j;
    const int64_t first = sorted_ids[i];
    const int64_t count = sorted_ids[j - 1] - first + 1;
    run.resize(static_cast<size_t>(count) * d);
    corpus.read(first, count, run.data());
    for (size_t t = i; t < j; ++t)
      std::memcpy(out + t * d, run.data() + (sorted_ids[t] - first) * d, sizeof(float) * d);
    i = j;
  }
}

}  // namespace sf::stages
