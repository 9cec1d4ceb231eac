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
//
// One file per idea under stages/partition/: cost_model (lambda, its calibration, expected
// costs), probes (access frequency, probed lists, probe curves), placement (LPT, replicas,
// co-location), tiers (re-sizing), repartition (the build step), plan (make_plan, shard
// indexes) and plan_file (plan.json). This header includes them all.
#pragma once

#include "stages/partition/cost_model.h"
#include "stages/partition/options.h"
#include "stages/partition/placement.h"
#include "stages/partition/plan.h"
#include "stages/partition/plan_file.h"
#include "stages/partition/probes.h"
#include "stages/partition/repartition.h"
#include "stages/partition/tiers.h"
