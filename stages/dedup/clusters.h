// Duplicate clusters across ranks: exact duplicates by a 128-bit hash shuffle, near
// duplicates by MinHash-LSH band buckets, candidate verification and distributed connected
// components. Every step is a shuffle (Comm::alltoallv) keyed by hash or by row owner: the
// edges, the buckets and the component labels are never gathered onto one rank, and a hot
// bucket or a hot cluster costs its owner at most one entry per rank (ranks combine first).
// Results are identical for any number of ranks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cluster/comm.h"

namespace sf::stages::dedup {

// One document as the clustering sees it.
struct DocRef {
  uint64_t row;       // global row number, unique across ranks
  double keep_score;  // keep policy: higher wins, ties -> smaller row. Must be finite.
};                    // (first: 0 for all; longest: text bytes; field: its value)

// Exact-dedup key of the normalised text.
struct Hash128 {
  uint64_t lo, hi;
};

// One local document that is NOT kept.
struct Verdict {
  uint64_t row;
  uint64_t cluster;         // smallest row of its duplicate cluster
  uint64_t representative;  // the row kept for that cluster (keep policy)
  double similarity;        // exact: 1.0; near: Jaccard to the representative (estimated
                            // from signatures, or exact when shingles are given)
};

// LSH banding: `bands` bands of `rows` signature values each. Signatures hold `num_perm`
// values (0 means bands * rows); bands * rows <= num_perm, the first bands * rows values are
// banded and all num_perm values estimate Jaccard.
struct LshParams {
  int bands = 14;
  int rows = 8;
  double threshold = 0.8;
  int num_perm = 0;
  int width() const { return num_perm > 0 ? num_perm : bands * rows; }
};

// Chooses bands x rows with bands * rows <= num_perm minimising the weighted false-positive
// + false-negative area around `threshold` (datasketch's _optimal_param, weights 0.5/0.5).
// Returns threshold and num_perm filled in. REQUIRES: 0 < threshold < 1, num_perm >= 1.
LshParams optimal_lsh_params(double threshold, int num_perm);

// Global figures (the same on all ranks) except where noted.
struct NearStats {
  int64_t buckets = 0;           // band buckets with >= 2 members
  int64_t largest_bucket = 0;    // members of the largest band bucket
  int64_t candidate_pairs = 0;   // distinct star edges (member -> bucket's smallest row)
  int64_t verified_edges = 0;    // candidate pairs with Jaccard >= threshold
  int64_t clusters = 0;          // connected components with >= 2 members
  int64_t largest_cluster = 0;   // members of the largest component
  int64_t cc_rounds = 0;         // hooking rounds of the connected components
  int64_t jump_rounds = 0;       // pointer-jumping rounds, all hooking rounds together
  // Most bucket entries one rank received in one band's key shuffle (a bucket costs its owner
  // one entry per contributing rank, not one per member).
  int64_t max_rank_bucket_entries = 0;
  // Most entries any owner received for one bucket (<= ranks, however large the bucket).
  int64_t largest_bucket_parts = 0;
  // This rank's seconds per step, in order (local values, for logging).
  std::vector<std::pair<std::string, double>> step_seconds;
};

// One verified candidate pair: row > other (the other end is a band bucket's smallest row),
// similarity as the verification computed it.
struct NearPair {
  uint64_t row, other;
  double similarity;
};

// Contract for both calls: `docs` sorted by strictly increasing row; this rank's rows lie in
// `range` (global rows); the ranges of the ranks are disjoint and increase with rank (a rank
// may have an empty range). Bad input on any rank throws the same cluster::PhaseError on all.

// Collective. Returns verdicts (sorted by row) for this rank's docs that are exact duplicates
// of a kept doc; the kept doc of each hash group is the one with the largest keep_score,
// ties -> smallest row; cluster = the group's smallest row. REQUIRES hashes.size() ==
// docs.size().
std::vector<Verdict> exact_duplicates(cluster::Comm& comm, cluster::RowRange range,
                                      const std::vector<DocRef>& docs,
                                      const std::vector<Hash128>& hashes);

// Collective. signatures: docs.size() x params.width() uint32 values, row-major (MinHash
// values as datasketch: (a*h+b mod 2^61-1) & 0xffffffff). shingles: empty, or one sorted
// unique uint64 shingle-hash vector per doc for exact Jaccard verification (two empty sets
// have Jaccard 1). Candidate edges join a doc to the smallest row of each band bucket it
// shares; edges with Jaccard >= threshold form clusters (connected components); every member
// but the cluster's kept doc gets a verdict (sorted by row). `stats` may be null; `verified`,
// when not null, receives this rank's verified pairs (its docs' edges), sorted by (row, other).
std::vector<Verdict> near_duplicates(cluster::Comm& comm, cluster::RowRange range,
                                     const std::vector<DocRef>& docs,
                                     const std::vector<uint32_t>& signatures,
                                     const LshParams& params,
                                     const std::vector<std::vector<uint64_t>>& shingles,
                                     NearStats* stats, std::vector<NearPair>* verified = nullptr);

}  // namespace sf::stages::dedup
