// Stage `partition`: inverted lists sized and placed on shards by the query workload.
//
// Cost model (after Quake): list j costs A_j * lambda(s_j) per query, where
// - A_j is the access frequency: the weighted share of workload queries whose `nprobe`
//   nearest centroids include j (so sum_j A_j = nprobe);
// - lambda(s) = a + b s is the time to scan a list of s codes for one query, calibrated on
//   this machine at run time with the index's own code type and the search kernel
//   (stages/list_scan.h), and stored with the plan.
// Re-sizing (plan_tiers): lists are grouped into tiers by access density; hot tiers get more,
// smaller lists (a split), cold tiers fewer, larger ones (a merge), within a bound on nlist, and
// each re-sized tier is re-clustered with stages/kmeans, and kept only if cheaper at equal
// recall on the workload (probe_curve). This happens after the coarse k-means
// and before any row is added, so the index stays a plain FAISS IndexIVF. Lists are then placed
// on shards by LPT on cost (by size without a workload); with a workload the plan is never
// worse, by its own cost model, than the count-balanced placement of the same lists.
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// plan.json: {"format_version": 1, ...}; readers refuse other versions.
constexpr int kPlanFormatVersion = 1;

// lambda(s) = a + b s seconds to scan s codes for one query.
struct ScanCost {
  double a = 0;
  double b = 1e-9;
  std::string source = "calibrated";  // "calibrated" (timed here) or "config"
  std::vector<int64_t> sizes;         // calibration points
  std::vector<double> seconds;        // measured seconds per query at each size
  double operator()(double codes) const { return a + b * codes; }
  static ScanCost linear(double a, double b) {  // a fixed lambda (source "config")
    ScanCost c;
    c.a = a;
    c.b = b;
    c.source = "config";
    return c;
  }
};

// Local. Times BatchScanner on lists of 16 .. 4096 codes (random codes of `index`'s own code
// type, batches of 32 queries; 7 rounds over all sizes, each timing >= 1 ms; the median per
// size: fit_scan_cost_rounds). `index` is trained; it is not modified (a copy is used).
ScanCost calibrate_scan_cost(const faiss::Index& index, uint64_t seed);

// Pure. The median of each size's timings (timings[i]: one per round for sizes[i]; a burst of
// load slowing fewer than half the rounds leaves it unchanged), fitted by fit_scan_cost. Throws
// std::invalid_argument on a size without timings and as fit_scan_cost.
ScanCost fit_scan_cost_rounds(const std::vector<int64_t>& sizes,
                              std::vector<std::vector<double>> timings);

// Pure. a + b s fitted to (sizes, seconds) by least squares on relative error (a >= 0, b > 0),
// then a snapped to b * snap_overhead_codes(a / b). Every decision of the plan (re-sizing,
// placement) depends on lambda only through a / b (scaling lambda scales every cost alike), so
// the snap makes timing noise that keeps a / b within the same power of two leave the plan
// unchanged. Throws std::invalid_argument on < 2 points or a time <= 0.
ScanCost fit_scan_cost(const std::vector<int64_t>& sizes, const std::vector<double>& seconds);

// The per-list overhead a / b in codes, snapped to the nearest power of two (log scale);
// below 8 codes (not resolved by timings of lists of >= 16 codes): 0.
double snap_overhead_codes(double codes);

// Local. Rows in the space of the IVF inside `index` (its vector transforms applied, one
// kBlockRows block at a time, BLAS single-threaded: the bits of a block do not depend on the
// thread count).
std::vector<float> to_ivf_space(const faiss::Index& index, int64_t n, const float* x);

// Local. A_j for each list of `quantizer` (ntotal lists): the weighted share of the n
// queries (rows in IVF space) whose nprobe nearest centroids include j. weights: empty (all
// 1) or n values >= 0 with a positive sum.
std::vector<double> access_frequency(const faiss::Index& quantizer, const float* queries, int64_t n,
                                     const std::vector<float>& weights, int nprobe);

// Recall-aware comparison of two layouts: a workload's mean recall@k and expected cost at
// each nprobe 1 .. max_nprobe (index p - 1), weighted by the query weights. A query's recall
// at p is the share of its true k nearest rows whose list is among its p nearest centroids;
// its cost at p is the sum of lambda(size) over those p lists.
struct ProbeCurve {
  std::vector<double> recall;
  std::vector<double> cost;
};

// Local. `queries`: nq rows in IVF space; `neighbour_lists`: nq x k, the list of each query's
// true neighbours (-1: none); `sizes`: per list of `quantizer`. weights: empty or nq values.
ProbeCurve probe_curve(const faiss::Index& quantizer, const float* queries, int64_t nq,
                       const std::vector<float>& weights,
                       const std::vector<int64_t>& neighbour_lists, int k,
                       const std::vector<int64_t>& sizes, const ScanCost& lambda, int max_nprobe);

// The cost at the smallest nprobe whose recall reaches `recall`, interpolated linearly between
// whole nprobes (so two layouts compare at exactly equal recall); *nprobe gets that nprobe.
// Infinity (and *nprobe 0) when no nprobe of the curve reaches it.
double cost_at_recall(const ProbeCurve& curve, double recall, double* nprobe);

// cost_j = access[j] * lambda(sizes[j]).
std::vector<double> expected_costs(const std::vector<double>& access,
                                   const std::vector<int64_t>& sizes, const ScanCost& lambda);

// ---------------------------------------------------------------------------------------------
// Placement.

// Longest processing time first: lists by decreasing load go to the least loaded shard (ties:
// smaller list id first, then smaller shard). The `replicate` heaviest lists (with a positive
// load, when shards > 1) are placed as two copies of half the load on two different shards.
// Returns, per list, its shards (the first is the primary).
std::vector<std::vector<int>> place_lpt(const std::vector<double>& load, int shards, int replicate);

// The lists each workload query probes: its nprobe nearest centroids (row i of `lists`, -1:
// none) and its weight.
struct ProbedLists {
  int nprobe = 0;
  std::vector<int64_t> lists;   // nq x nprobe
  std::vector<double> weights;  // nq (all 1 without weights)
  int64_t queries() const { return nprobe > 0 ? static_cast<int64_t>(weights.size()) : 0; }
};

// Local. At most `max_queries` of the n queries (rows in IVF space): every (n / max_queries)-th
// one, with its weight.
ProbedLists probed_lists(const faiss::Index& quantizer, const float* queries, int64_t n,
                         const std::vector<float>& weights, int nprobe, int64_t max_queries);

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

// ---------------------------------------------------------------------------------------------
// Re-sizing lists: tiers.
//
// Lists are ranked by access density A_j / s_j and cut into `tiers` groups of equal access
// mass. A tier of N rows with query mass Q, cut into n lists of N/n rows, has lists probed
// about Q/n each: each list costs ~ b Q N / n^2 and the tier ~ b Q N / n per query. The total
// for a fixed nlist is least, and the cost per list equal, when n is proportional to
// sqrt(Q N): hot tiers get more, smaller lists (a split), cold tiers fewer, larger ones (a
// merge). Each tier whose count changes is re-clustered as a whole (k-means over its rows).

struct TierPlan {
  std::vector<int> tier_of_list;  // per list
  std::vector<double> access;     // per tier: sum of A_j
  std::vector<int64_t> rows;      // per tier: sum of s_j
  std::vector<int> lists_before;  // per tier
  std::vector<int> lists_after;   // per tier: sum = nlist_after
};

// Pure. `tiers` >= 1; nlist_after >= tiers. Lists with no access fall in the coldest tier. A
// tier gets at least 1 list and at most rows / min_list_size (but at least 1); the remainder
// goes to the tiers with the largest sqrt(Q N) share. All access 0: every tier keeps its count.
TierPlan plan_tiers(const std::vector<double>& access, const std::vector<int64_t>& sizes, int tiers,
                    int nlist_after, int64_t min_list_size);

// Replaces the coarse centroids of a trained, empty index (nlist may change): the quantizer
// is refilled, the inverted lists are new and empty, IVF-PQ's precomputed tables redone.
void set_coarse_centroids(faiss::Index& index, const std::vector<float>& centroids, int nlist);

// ---------------------------------------------------------------------------------------------
// The build step.

struct PartitionOptions {
  int nprobe = 8;
  int shards = 1;
  int replicate_hot = 0;
  int tiers = 4;      // access-density tiers (1: lists are not re-sized)
  int max_nlist = 0;  // nlist after re-sizing; 0 = the factory's nlist
  int64_t min_list_size = 16;
  double colocate_slack = 0.05;   // co-location's load bound over the mean; < 0: LPT only
  std::vector<double> scan_cost;  // [a, b]: fixed lambda; empty: calibrate
  int kmeans_iterations = 10;
  uint64_t seed = 1234;
  int64_t batch_rows = 16384;
};

// The workload: queries in the corpus's space and their weights (empty: all 1).
struct Workload {
  std::string source;
  int64_t nq = 0;
  std::vector<float> queries;  // nq x d
  std::vector<float> weights;
};

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

// ---------------------------------------------------------------------------------------------
// The plan.

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

nlohmann::json plan_to_json(const PartitionPlan& plan);
// Throws std::runtime_error on a missing key or another format_version.
PartitionPlan plan_from_json(const nlohmann::json& json);
void write_plan(const PartitionPlan& plan, const std::string& path);  // atomic
PartitionPlan read_plan(const std::string& path);  // throws std::runtime_error naming path

// The index of one shard: `empty` (the serialized trained, empty index) filled with the lists
// of `shard` from `merged`. Stock FAISS reads and searches it (other lists are empty).
std::unique_ptr<faiss::Index> make_shard_index(const faiss::Index& merged,
                                               const std::vector<char>& empty,
                                               const PartitionPlan& plan, int shard);

// Where a shard lives in the run directory, and which rank serves it.
std::string shard_file_name(int shard);  // "shards/shard-0000.faiss"
inline int shard_rank(int shard, int ranks) { return shard % ranks; }

}  // namespace sf::stages
