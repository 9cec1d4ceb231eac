// Quality of a dedup run against exact all-pairs Jaccard (for corpora small enough: every pair
// of documents sharing a shingle is compared). Local, single-threaded; no I/O.
//
// Ground truth: a "true pair" is two documents whose shingle sets have Jaccard >= threshold
// (two empty sets: Jaccard 1). What the run claims, and the figures measured against it:
//   pair precision   of the pairs the run verified as duplicates (exact duplicates with their
//                    hash group's kept document, and near candidate edges that passed
//                    verification), the share that are true pairs;
//   pair recall      of the true pairs, the share whose two documents the run put in one
//                    cluster (so at most one of them is kept); F1 of these two;
//   transitive precision  of all pairs of documents in one cluster, the share that are true
//                    pairs (lower: connected components chain A~B~C while A, C may differ);
//   representative precision  of the removed documents, the share with Jaccard >= threshold
//                    to the document kept for them;
//   document precision  of the removed documents, the share with Jaccard >= threshold to some
//                    kept document (their text survives in the output);
//   document recall  of the documents having a true duplicate, the share "resolved": removed,
//                    or kept with no kept true duplicate left.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace sf::stages::dedup {

// One pair a dedup run verified (document indices into the corpus).
struct ClaimedPair {
  int64_t a, b;
  bool near;  // false: an exact duplicate (same normalised text)
};

// What a dedup run decided, per document index 0..n-1.
struct DedupOutcome {
  std::vector<int64_t> cluster;         // equal values: one cluster (kept singletons: any
                                        // value no other document has)
  std::vector<int64_t> representative;  // -1: kept; else the index of the doc kept for it
  std::vector<ClaimedPair> pairs;       // verified pairs (duplicates are counted once)
};

struct DedupQuality {
  int64_t docs = 0;
  int64_t true_pairs = 0;                             // Jaccard >= threshold
  int64_t true_pairs_same_cluster = 0;                // recall's numerator
  int64_t claimed_pairs = 0, claimed_true = 0;        // distinct verified pairs
  int64_t claimed_near = 0, claimed_near_true = 0;    // of them, near candidate edges
  int64_t claimed_exact = 0, claimed_exact_true = 0;  // of them, exact duplicates
  int64_t same_cluster_pairs = 0;                     // transitive precision's denominator
  int64_t removed = 0, removed_true_to_representative = 0, removed_true_to_kept = 0;
  int64_t docs_with_true_duplicate = 0, docs_resolved = 0;
  int64_t residual_pairs = 0;  // true pairs with both documents kept
  // Missed true pairs (not in one cluster): 4 equal bins of [threshold, 1), then Jaccard 1.
  std::vector<int64_t> missed_by_jaccard = std::vector<int64_t>(5, 0);
  // Claimed pairs that are not true pairs, by Jaccard: bin k holds [threshold - 0.05 (k + 1),
  // threshold - 0.05 k); the last bin everything lower.
  std::vector<int64_t> false_claims_by_jaccard = std::vector<int64_t>(5, 0);

  double precision() const;
  double recall() const;
  double f1() const;
  double transitive_precision() const;
  double representative_precision() const;
  double document_precision() const;
  double document_recall() const;
};

// Exact Jaccard of two sorted unique sets; two empty sets: 1.
double exact_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// Called for every pair (a < b) sharing a shingle (or both empty) with Jaccard >= report_from,
// or in one cluster, or claimed, in increasing b; then for claimed pairs sharing no shingle
// (Jaccard 0), in increasing (a, b). Same-cluster pairs sharing no shingle are counted in
// same_cluster_pairs but not reported.
using QualityPairFn =
    std::function<void(int64_t a, int64_t b, double jaccard, bool same_cluster, bool claimed)>;

// REQUIRES: sets sorted and unique; outcome vectors of sets.size() entries; indices valid.
// Throws std::invalid_argument otherwise. Memory: an inverted index of all shingles.
DedupQuality measure_dedup_quality(const std::vector<std::vector<uint64_t>>& sets,
                                   const DedupOutcome& outcome, double threshold,
                                   double report_from = 1.1, const QualityPairFn& report = {});

}  // namespace sf::stages::dedup
