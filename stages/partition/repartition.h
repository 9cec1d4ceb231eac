// The build step of `partition`: inverted lists re-sized by tier and re-clustered, before any
// row is added, and kept only if cheaper at equal recall on the workload.
#pragma once

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/partition/cost_model.h"
#include "stages/partition/options.h"
#include "stages/partition/tiers.h"
#include "stages/progress.h"

namespace sf::stages {

struct RepartitionReport {
  ScanCost scan_cost;
  int nlist_before = 0;
  int nlist_after = 0;
  int splits = 0;  // lists gained by the tiers that grew (hot)
  int merges = 0;  // lists given up by the tiers that shrank (cold)
  TierPlan tiers;
  bool applied = false;    // false: the changes would not lower the expected cost
  double cost_before = 0;  // expected seconds per query, cost model, estimated
  double cost_after = 0;   // ... at the recall cost_before has (recall_target), estimated
  // Recall-aware check: recall@10 of the workload's first `recall_queries` queries (their true
  // neighbours found in the count pass) at options.nprobe on the k-means lists, and the nprobe
  // the re-sized lists need for that recall (fractional: interpolated; 0 when not checked).
  int recall_queries = 0;
  double recall_target = 0;
  double nprobe_after = 0;
};

// Collective. `index` is trained and empty, identical on every rank; `workload` is read on
// rank 0 only (nullptr elsewhere, and on every rank when there is none). Counts the rows of
// each list and finds the true 10 nearest rows of the workload's first 1000 queries (one pass
// over this rank's rows), then rank 0 plans the tiers; a sample of each re-sized tier's rows
// (by global id and seed: any rank count gives the same sample; at most 128 rows per new
// list) goes to rank 0, which re-clusters it (stages/kmeans.h). The new lists are kept only
// when their estimated cost per query at the recall the k-means lists give at options.nprobe
// (probe_curve) is lower than the k-means lists' cost there: smaller hot lists make a query
// need more probes for the same recall, which a model at a fixed nprobe does not see. Then
// every rank's index gets the new centroids. Without a workload nothing changes (no pass).
// The scan cost is calibrated on rank 0 (or taken from options) and broadcast.
RepartitionReport repartition_lists(cluster::Comm& comm, faiss::Index& index,
                                    io::VectorCorpus& corpus, cluster::RowRange range,
                                    const Workload* workload, const PartitionOptions& options,
                                    const ProgressFn& progress = {});

}  // namespace sf::stages
