// Stage `build`: each rank adds its own rows, with their global ids, to its copy of the
// trained index. Local: no collectives (wrap in cluster::run_local_phase).
#pragma once

#include <cstdint>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// REQUIRES: index trained (stages/train.h). Rows are added in global-id order, one global
// block (kBlockRows) at a time, so each inverted list of this shard is sorted by id and every
// code is the one a single-rank build computes. Returns the number of rows added.
int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress = {});

}  // namespace sf::stages
