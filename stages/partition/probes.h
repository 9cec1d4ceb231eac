// What a workload's queries probe in `partition`: the access frequency of each list, the lists
// each query probes (for co-location), and recall and cost per nprobe (probe curves).
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <vector>

#include "stages/partition/cost_model.h"

namespace sf::stages {

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

}  // namespace sf::stages
