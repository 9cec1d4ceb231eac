// The partition plan: each inverted list's size, access, cost and shards, made for a built
// index, and the index of one shard made from it.
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stages/partition/cost_model.h"
#include "stages/partition/options.h"
#include "stages/partition/repartition.h"

namespace sf::stages {

struct ListPlan {
  int64_t size = 0;
  double access = 0;
  double cost = 0;
  std::vector<int> shards;  // the first is the primary; more when replicated
};

struct PartitionPlan {
  int nlist = 0;
  int shards = 0;
  int nprobe = 0;
  std::string balance = "count";  // "cost" (workload-aware) or "count"
  std::string workload;           // source of the workload ("" = none)
  int64_t workload_queries = 0;
  ScanCost scan_cost;
  std::vector<ListPlan> lists;
  // By the cost model: max/mean expected shard cost of this plan, and of LPT on counts.
  double max_over_mean_cost = 1;
  double count_balanced_max_over_mean_cost = 1;
  double expected_cost_per_query = 0;  // sum of list costs (seconds per query)
  // Co-location (with a workload): whether place_colocated's placement was kept, the slack
  // that gave it (the configured one when not kept),
  // and the workload's mean shards per query under the kept placement and under the placement
  // co-location was compared with (LPT on cost, or on counts when that balanced better).
  bool colocated = false;
  double colocate_slack = 0;
  double shards_per_query = 0;
  double lpt_shards_per_query = 0;
  RepartitionReport repartition;

  std::vector<int> lists_of_shard(int shard) const;
};

// Local. The plan for a built index (its lists filled): sizes from the lists, access from the
// workload (nullptr: uniform nprobe / nlist), placement by LPT on expected cost; with a
// workload the count-balanced LPT is evaluated too and kept if its max shard cost is lower.
// Then (options.colocate_slack >= 0) place_colocated replaces that placement when the
// workload's queries reach fewer shards with it and its max shard cost is no worse than count
// balance's and within (1 + slack) x the mean (or no worse than the placement it replaces).
PartitionPlan make_plan(const faiss::Index& index, const Workload* workload,
                        const PartitionOptions& options, const ScanCost& lambda);
// The same with the lists' sizes given (`index`'s lists unused: the collective merge's global
// sizes, the lists being spread over the ranks). REQUIRES: sizes.size() == nlist.
PartitionPlan make_plan(const faiss::Index& index, const std::vector<int64_t>& sizes,
                        const Workload* workload, const PartitionOptions& options,
                        const ScanCost& lambda);

// The index of one shard: `empty` (the serialized trained, empty index) filled with the lists
// of `shard` from `merged`. Stock FAISS reads and searches it (other lists are empty).
std::unique_ptr<faiss::Index> make_shard_index(const faiss::Index& merged,
                                               const std::vector<char>& empty,
                                               const PartitionPlan& plan, int shard);

// Where a shard lives in the run directory, and which rank serves it.
std::string shard_file_name(int shard);  // "shards/shard-0000.faiss"
inline int shard_rank(int shard, int ranks) { return shard % ranks; }

}  // namespace sf::stages
