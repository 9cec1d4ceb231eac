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

// Calls visit(first_global_row, rows, data) for consecutive batches covering `range`.
// Local (no collectives). Throws io::InputError from the reader.
void for_each_batch(io::VectorCorpus& corpus, cluster::RowRange range, int64_t batch_rows,
                    const std::function<void(int64_t, int64_t, const float*)>& visit,
                    const ProgressFn& progress = {}, const std::string& step = "read");

// Reads the rows with the given sorted global ids into out (ids.size() x dim), reading
// runs of nearby ids with one request. Local.
void read_selected_rows(io::VectorCorpus& corpus, const std::vector<int64_t>& sorted_ids,
                        float* out);

}  // namespace sf::stages
