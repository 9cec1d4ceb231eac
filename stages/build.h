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

// The memory plan of the add stage on one rank (pipeline/add.cc): the fixed part (`fixed_bytes`:
// the trained index twice, the empty one and the copy that takes a piece, and each thread's
// block scratch: a block's transformed rows and coarse distances), a batch (per row: its
// floats, list number and code) and a piece (per row: its code and id in the lists, up to twice
// over as they grow, and once more encoded for its file).
struct AddPlan {
  int64_t batch_rows = 0;   // rows read and added per batch
  int64_t piece_rows = 0;   // rows per piece (flushed to its file)
  uint64_t fixed_bytes = 0;
  uint64_t batch_row_bytes = 0, piece_row_bytes = 0;
  uint64_t need_bytes = 0;  // the fixed part, a batch and a piece of kBlockRows rows: the least
};
// `batch_rows` and `piece_rows` themselves where the budget is 0, or where (rounded up to
// kBlockRows, as split_rows cuts) a batch fits a quarter and a piece three quarters of half the
// budget less the fixed part (the other half: the process, the reader); else what fits, a
// multiple of kBlockRows, at least kBlockRows. The outputs are the same for any batch and
// piece size. `code_size`, `nlist`: the trained IVF index's; `index_bytes`: its serialized
// size. No MPI.
AddPlan plan_add(int64_t batch_rows, int64_t piece_rows, int dim, uint64_t code_size,
                 int64_t nlist, uint64_t index_bytes, int threads, uint64_t budget_bytes);

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
