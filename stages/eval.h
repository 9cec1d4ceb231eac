// Stage `eval`: recall and throughput of the merged index against a ground truth.
//
// Recall@R is the k-NN recall of ann-benchmarks: |top-R found ∩ top-R true| / R, averaged
// over queries. The ground truth comes from a file, or is computed exactly across the ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"
#include "stages/stop_request.h"

namespace sf::stages {

struct Neighbours {
  int64_t nq = 0;
  int k = 0;
  std::vector<int64_t> ids;     // nq x k, nearest first
  std::vector<float> distances;  // nq x k (empty when read from a file)
};

// The memory plan of exact_neighbours within a budget: a batch of `rows` corpus rows (read and
// copied into a flat index: 2 x rows x dim floats) beside the fixed part (`fixed_bytes`: the
// queries, each rank's top-k and the batch's, the ranks' top-k gathered on rank 0, FAISS's
// distance block). `need_bytes`: the fixed part and a batch of 1024 rows, the least the scan
// runs in.
struct ExactScanPlan {
  int64_t rows = 0;
  uint64_t fixed_bytes = 0;
  uint64_t need_bytes = 0;
};
// `rows` is `batch_rows` where it fits half of `budget_bytes` (the other half: the index every
// rank loads, the process) or `budget_bytes` is 0; else what fits, at least 1024. No MPI.
ExactScanPlan plan_exact_scan(int64_t batch_rows, int64_t nq, int k, int dim, int ranks,
                              uint64_t budget_bytes);

// Collective. Exact top-k of each query over the whole corpus: each rank scans its own rows
// in batches; rank 0 merges (ties broken by the smaller id). Result valid on rank 0 only.
// With `stop_requested` set, a rank asked to stop leaves its scan at a batch boundary and
// every rank throws StageStopped after the scan.
Neighbours exact_neighbours(cluster::Comm& comm, io::VectorCorpus& corpus,
                            cluster::RowRange range, const float* queries, int64_t nq, int k,
                            bool inner_product, int64_t batch_rows,
                            const ProgressFn& progress = {},
                            const StopRequestFn& stop_requested = {});

struct EvalPoint {
  int nprobe = 0;
  std::optional<double> recall_at_1, recall_at_10, recall_at_100;  // empty: truth too short
  std::optional<double> recall_at_k;  // at evaluate_index's `k` (eval.k); empty: truth too short
  double qps = 0;
  double seconds = 0;
};

// Collective. Each rank searches its slice of the queries (cluster::row_range over nq) with
// its own copy of the merged index, at each nprobe (k = max(k, 100), capped by ntotal);
// rank 0 gathers the results and scores them against `truth` (needed on rank 0 only).
// QPS = nq / the slowest rank's search time. Result valid on rank 0. progress("eval: search
// (nprobe values)", values done, values) after each value, outside the timed search.
std::vector<EvalPoint> evaluate_index(cluster::Comm& comm, faiss::Index& index,
                                      const float* queries, int64_t nq, const Neighbours& truth,
                                      int k, const std::vector<int>& nprobes,
                                      const ProgressFn& progress = {});

// The nprobe that eval recommends: the smallest in [1, nlist] whose recall@k reaches the target.
struct NprobeChoice {
  bool reached = false;
  EvalPoint point;  // at the chosen nprobe; not reached: at nprobe = nlist (the best recall)
};

// smallest_nprobe over `measure(n)` (the point at nprobe n, recall_at_k set), given the points
// already measured (`curve`, any order; those above nlist are ignored): the curve brackets the
// answer (the smallest curve nprobe that reaches `target`, else nlist, measured), then bisection
// between it and the largest curve nprobe below it. Recall is nearly monotone in nprobe: only
// the result and its predecessor are checked (the result reaches the target, nprobe - 1 does
// not), so a non-monotone curve may give a larger value than the true smallest. Deterministic
// in the recalls (QPS never decides). Measures each nprobe at most once. No MPI.
// REQUIRES: nlist >= 1.
NprobeChoice smallest_nprobe(const std::vector<EvalPoint>& curve, int nlist, double target,
                             const std::function<EvalPoint(int nprobe)>& measure);

// Collective. smallest_nprobe for `index` (an IVF: nlist from it) with evaluate_index as the
// measure; the curve's and each measure's recall@k are broadcast from rank 0 so every rank
// bisects alike. Result valid on every rank (QPS on rank 0 only). REQUIRES: `curve` is
// evaluate_index's result for the same queries, truth and k, with recall@k measured.
NprobeChoice recommend_nprobe(cluster::Comm& comm, faiss::Index& index, const float* queries,
                              int64_t nq, const Neighbours& truth, int k,
                              const std::vector<EvalPoint>& curve, double target);

// |found[:R] ∩ truth[:R]| / R averaged over queries; a query whose truth is padded with -1
// (corpus smaller than R) is scored over the true ids it has. No MPI.
double knn_recall(const std::vector<int64_t>& found, int found_k, const Neighbours& truth,
                  int r);

}  // namespace sf::stages
