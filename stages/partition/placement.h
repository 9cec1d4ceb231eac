// Placement of inverted lists on shards in `partition`: LPT on a load (expected cost or size),
// optional replicas of the heaviest lists, and co-location of the lists queries probe together.
#pragma once

#include <vector>

#include "stages/partition/probes.h"

namespace sf::stages {

// Longest processing time first: lists by decreasing load go to the least loaded shard (ties:
// smaller list id first, then smaller shard). The `replicate` heaviest lists (with a positive
// load, when shards > 1) are placed as two copies of half the load on two different shards.
// Returns, per list, its shards (the first is the primary).
std::vector<std::vector<int>> place_lpt(const std::vector<double>& load, int shards, int replicate);

// The weighted mean number of distinct shards a query of `probed` is sent to: of a replicated
// list, query q uses copy q % copies, as search routes it (by the query's index).
double shards_per_query(const ProbedLists& probed, const std::vector<std::vector<int>>& placement);

// Co-location (after HQI: a batch of queries should touch few partitions): lists go to shards
// by decreasing load, as LPT, but each to the shard already holding most of the lists its
// queries probe (the weighted count of `probed` queries that probe both), among the shards it
// fits on within (1 + slack) x the mean load; none fits: the least loaded shard. Replicas as
// in place_lpt; copy c of a list counts for the queries q with q % copies == c. Then passes of
// single-list moves (a list of one copy goes to the shard that most lowers the weighted count
// of (query, shard) pairs, within the cap) until a pass moves none. A query's vector
// then travels to fewer shards, and each shard gathers and scans fewer (query, list) groups, for a
// shard load at most ~(1 + slack) x the mean.
std::vector<std::vector<int>> place_colocated(const std::vector<double>& load,
                                              const ProbedLists& probed, int shards, int replicate,
                                              double slack);

// Per-shard load of a placement under `load` (replicas share their list's load equally).
std::vector<double> shard_loads(const std::vector<std::vector<int>>& placement,
                                const std::vector<double>& load, int shards);

// max / mean of loads (1 when all are zero).
double max_over_mean(const std::vector<double>& loads);

}  // namespace sf::stages
