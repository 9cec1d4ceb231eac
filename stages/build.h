// Stage `build`: each rank adds its own rows, with their global ids, to its copy of the
// trained index. Local: no collectives (wrap in cluster::run_local_phase or a checkpointed
// step, see pipeline/add.cc).
#pragma once

#include <cstdint>
#include <vector>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// Cuts `range` at global multiples of `unit_rows` (rounded up to a multiple of kBlockRows):
// the batches a rank reads, or the pieces the add stage checkpoints. A unit holds the same
// global rows for any number of ranks, except where a rank edge cuts it. Empty range: {}.
std::vector<cluster::RowRange> split_rows(cluster::RowRange range, int64_t unit_rows);

// Adds rows [first, first + count) of the corpus (`x`, count x index.d floats) with their
// global ids. Each global block of kBlockRows rows is transformed, assigned and encoded on
// one OpenMP thread with single-threaded BLAS (stages/block_parallel.h): every code is the
// one a single-rank, single-thread build computes. REQUIRES: index trained, without a direct
// map; rows added in increasing global order.
void add_rows(faiss::Index& index, int64_t first, int64_t count, const float* x);

// REQUIRES: index trained (stages/train.h). Rows are added in global-id order, one global
// block (kBlockRows) at a time, so each inverted list of this shard is sorted by id and every
// code is the one a single-rank build computes. Returns the number of rows added.
int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress = {});

}  // namespace sf::stages
