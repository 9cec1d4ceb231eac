// Scanning inverted lists for a batch of queries: the kernel of `shardforge search` and of the
// scan-cost calibration (stages/partition.h).
//
// The queries that probe one list are scanned together, one distance computation per list and
// group of queries:
// - IndexIVFFlat: the distance matrix of the group (one query or more) against the list's
//   raw vectors, one BLAS GEMM per group and list block (L2: |q|^2 + |y|^2 - 2 q.y). The codes
//   whose matrix distance could enter a query's top-k (within a bound on the rounding of both
//   computations; at most the k best of the block and their near ties) are scored again
//   exactly, bit for bit as fvec_L2sqr / fvec_inner_product, the functions the IVFFlat scanner
//   of a plain FAISS search uses (checked at run time against the linked libfaiss; one that
//   sums in another order is called instead), so the reported distances equal a FAISS
//   search's. We go around FAISS's own choice below its BLAS threshold (20 queries: one
//   fvec_L2sqr per pair) because Debian's libfaiss is built for baseline x86-64, where
//   fvec_L2sqr is the scalar reference loop while OpenBLAS picks AVX-512 kernels at run time:
//   the matrix is faster for a group of any size (bench/RESULTS.md, "Workload-aware
//   partitioning").
// - every other code (PQ, SQ, ...): FAISS's own InvertedListScanner, one per query of the
//   batch (set_query once per query, set_list + scan_codes per list: what
//   IndexIVF::search_preassigned does per query), visited list by list so a list's codes are
//   read once per batch while they are in cache. No bypass of FAISS's distance code.
#pragma once

#include <faiss/IndexIVF.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace sf::stages {

// The top-k of each query of a batch, over the lists scanned so far.
// Thread safety: none (one per thread).
class BatchScanner {
 public:
  // `queries`: nq rows of ivf.d floats (already transformed), kept by pointer: they must
  // outlive the scanner. Result heaps start empty (ids -1).
  BatchScanner(const faiss::IndexIVF& ivf, int k, int64_t nq, const float* queries);
  ~BatchScanner();
  BatchScanner(const BatchScanner&) = delete;
  BatchScanner& operator=(const BatchScanner&) = delete;

  // Scans list `list_no` of `lists` (same code type as ivf) for the queries `which` (indices
  // into the batch), `coarse_dis[i]` the distance of query which[i] to the list's centroid.
  void scan_list(const faiss::InvertedLists& lists, int64_t list_no,
                 const std::vector<int64_t>& which, const std::vector<float>& coarse_dis);

  // Sorts every query's result, nearest first (then the heaps are done with).
  void finish();
  const float* distances(int64_t q) const { return dis_.data() + q * k_; }
  const int64_t* ids(int64_t q) const { return ids_.data() + q * k_; }
  int64_t codes_scanned() const { return codes_scanned_; }

 private:
  const faiss::IndexIVF& ivf_;
  const int k_;
  const int64_t nq_;
  const float* queries_;
  const bool inner_product_;
  const bool flat_;
  std::vector<float> dis_;
  std::vector<int64_t> ids_;
  std::vector<std::unique_ptr<faiss::InvertedListScanner>> scanners_;  // non-flat, lazily
  std::vector<float> group_, group_dis_, code_norms_;                  // flat scratch
  std::vector<size_t> pick_;  // flat: the codes of a row to score exactly
  std::vector<float> keys_, exact_;
  std::vector<float> query_norms_;  // |q|^2
  int64_t codes_scanned_ = 0;

  bool lanes_match_faiss_ = true;  // flat: the lane loops give FAISS's distances here

  float margin(int64_t q, float max_code_norm) const;
  const std::vector<size_t>& rescore_candidates(int64_t q, const float* row, size_t ny, float m);
};

// Merges sorted top-k results (each k distances and ids, nearest first, -1 padded) into one
// sorted top-k. No MPI.
void merge_topk(int k, bool inner_product, const std::vector<const float*>& dis,
                const std::vector<const int64_t*>& ids, float* out_dis, int64_t* out_ids);

}  // namespace sf::stages
