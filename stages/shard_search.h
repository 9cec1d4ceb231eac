// Stage `search`: batched distributed search over the sharded layout (stages/partition.h).
//
// Shard s is served by rank s % ranks, which loads only its shards. Each serving rank takes a
// contiguous slice of the queries, applies the index's transforms and the coarse quantizer
// (every shard file carries them), and routes each (query, probed list) pair to the rank
// holding the list (a replicated list: replica query_id % copies). A serving rank groups the
// queries it received by list and scans each list once per group (stages/list_scan.h); the
// per-rank top-k go back to the query's home rank, which merges them. Results equal a search
// of the merged index at the same nprobe (ids up to distance ties).
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "cluster/comm.h"
#include "stages/partition.h"
#include "stages/stop_request.h"

namespace sf::stages {

struct ShardSearchOptions {
  int k = 10;
  int nprobe = 8;
  int64_t batch_queries = 4096;  // queries per serving rank per round
  StopRequestFn stop_requested;  // agreed before each round; a stop throws StageStopped
};

struct ShardSearchResult {
  int64_t nq = 0;
  int k = 0;
  std::vector<int64_t> ids;                      // rank 0: nq x k, nearest first, -1 padded
  std::vector<float> distances;                  // rank 0: nq x k
  std::vector<int64_t> per_shard_codes_scanned;  // every rank: codes scanned per shard
  int64_t codes_scanned = 0;                     // every rank: total over shards
  double shards_per_query = 0;                   // every rank: mean shards a query went to
  double seconds = 0;                            // every rank: slowest rank's search wall time
};

// search.batch_queries bounded by a memory budget: what one round holds per query (the query,
// its probes, the (query, list) pairs routed and received, the per-rank top-k coming back, at
// `ranks` ranks) within an eighth of `budget_bytes` (the rest: the shards, the queries, the
// results). `batch_queries` itself when it fits or `budget_bytes` is 0; at least 1. Results do
// not depend on the batch.
int64_t budget_batch_queries(int64_t batch_queries, int dim, int k, int nprobe, int ranks,
                             uint64_t budget_bytes);

// The queries rank `rank` serves (a contiguous slice; empty for ranks holding no shard).
cluster::RowRange query_slice(int64_t nq, int shards, int rank, int ranks);

// Collective. `shards`: this rank's shard indexes, by shard id (exactly the shards s with
// shard_rank(s) == rank); `queries`: this rank's query_slice rows (corpus space). Every shard
// index must match the plan (nlist) and share one quantizer. Throws cluster::PhaseError, or
// StageStopped (every rank alike) when options.stop_requested asks.
ShardSearchResult distributed_search(cluster::Comm& comm, const PartitionPlan& plan,
                                     const std::map<int, std::unique_ptr<faiss::Index>>& shards,
                                     const float* queries, int64_t nq,
                                     const ShardSearchOptions& options);

}  // namespace sf::stages
