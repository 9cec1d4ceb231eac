// Stage `build`: each rank adds its own rows, with their global ids, to its copy of the
// trained index. Local: no collectives (wrap in cluster::run_local_phase).
#pragma once

#include <cstdint>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// REQUIRES: index trained (stages/train.h). Rows are added in global-id order, so each
// inverted list of this shard is sorted by id. Returns the number of rows added.
int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress = {});

}  // namespace sf::stages
