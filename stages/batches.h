// Streaming a rank's rows in batches. Batch boundaries fall on global multiples of
// batch_rows, so a batch holds the same rows whatever the number of ranks (rank edges aside).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// The unit of computation. Rank edges fall on multiples of it (cluster::block_row_range) and
// every BLAS-backed step (transforms, coarse assignment, encoding, k-means) runs on whole
// blocks aligned to global multiples of it, so each computes on exactly the same matrix
// shapes for any number of ranks: BLAS results can depend on shapes in their last bits.
constexpr int64_t kBlockRows = 1024;

// The row range of `rank` for a corpus of `rows`: block_row_range over kBlockRows.
inline cluster::RowRange rank_rows(int64_t rows, int rank, int size) {
  return cluster::block_row_range(rows, kBlockRows, rank, size);
}

// Calls visit(first_global_row, rows, data) for consecutive batches covering `range`.
// batch_rows is rounded up to a multiple of kBlockRows.
// Local (no collectives). Throws io::InputError from the reader.
void for_each_batch(io::VectorCorpus& corpus, cluster::RowRange range, int64_t batch_rows,
                    const std::function<void(int64_t, int64_t, const float*)>& visit,
                    const ProgressFn& progress = {}, const std::string& step = "read");

// Reads the rows with the given sorted global ids into out (ids.size() x dim), reading
// runs of nearby ids with one request. Local.
void read_selected_rows(io::VectorCorpus& corpus, const std::vector<int64_t>& sorted_ids,
                        float* out);

}  // namespace sf::stages
