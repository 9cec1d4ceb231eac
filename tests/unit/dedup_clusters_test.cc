// Unit tests of stages/dedup/clusters.h on one rank (SerialComm): the LSH parameter choice
// against datasketch's, exact groups and the keep policy, band buckets, verification, and
// the connected components on a long shuffled chain, a star and isolated documents, each
// against a brute-force reference (tests/dedup_reference.h).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "stages/dedup/clusters.h"
#include "tests/dedup_reference.h"

namespace sf::stages::dedup {
namespace {

using sf::testing::planted_corpus;
using sf::testing::reference_exact;
using sf::testing::reference_near;
using sf::testing::SignatureCorpus;

cluster::RowRange whole(size_t n) { return {0, static_cast<int64_t>(n)}; }

void expect_same(const std::vector<Verdict>& got, const std::vector<Verdict>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].row, want[i].row) << "verdict " << i;
    EXPECT_EQ(got[i].cluster, want[i].cluster) << "row " << want[i].row;
    EXPECT_EQ(got[i].representative, want[i].representative) << "row " << want[i].row;
    EXPECT_DOUBLE_EQ(got[i].similarity, want[i].similarity) << "row " << want[i].row;
  }
}

// Expected values computed independently in Python (numpy, composite Simpson with 20,000
// panels, datasketch's loop: b in 1..num_perm, r in 1..num_perm/b, strict improvement).
// (0.75, 256) -> (21, 12) is also the example in text-dedup's optimal_param docstring.
TEST(DedupLshParams, MatchesDatasketchOptimalParam) {
  struct Case {
    double threshold;
    int num_perm, bands, rows;
  };
  const Case cases[] = {{0.8, 128, 9, 13},  {0.75, 256, 21, 12}, {0.5, 128, 25, 5},
                        {0.7, 112, 12, 9},  {0.9, 256, 9, 28},   {0.8, 112, 9, 12},
                        {0.85, 64, 4, 15},  {0.8, 250, 16, 15}};
  for (const Case& c : cases) {
    const LshParams p = optimal_lsh_params(c.threshold, c.num_perm);
    EXPECT_EQ(p.bands, c.bands) << c.threshold << " / " << c.num_perm;
    EXPECT_EQ(p.rows, c.rows) << c.threshold << " / " << c.num_perm;
    EXPECT_EQ(p.num_perm, c.num_perm);
    EXPECT_EQ(p.width(), c.num_perm);
    EXPECT_DOUBLE_EQ(p.threshold, c.threshold);
  }
  EXPECT_THROW(optimal_lsh_params(1.0, 128), std::invalid_argument);
  EXPECT_THROW(optimal_lsh_params(0.0, 128), std::invalid_argument);
  EXPECT_THROW(optimal_lsh_params(0.8, 0), std::invalid_argument);
}

TEST(DedupExact, KeepPolicyAndGroups) {
  auto comm = cluster::make_serial_comm();
  // rows 0..7; hash groups {0,3,5}, {1,6}, {2}, {4,7}
  const std::vector<Hash128> hashes = {{1, 9}, {2, 9}, {3, 9}, {1, 9},
                                       {4, 9}, {1, 9}, {2, 9}, {4, 9}};
  std::vector<DocRef> docs;
  for (uint64_t r = 0; r < 8; ++r) docs.push_back({r, 0.0});
  // first: the smallest row of each group is kept
  std::vector<Verdict> got = exact_duplicates(*comm, whole(8), docs, hashes);
  std::vector<Verdict> want = {{3, 0, 0, 1.0}, {5, 0, 0, 1.0}, {6, 1, 1, 1.0}, {7, 4, 4, 1.0}};
  expect_same(got, want);
  // longest-like scores: row 5 wins its group; rows 1 and 6 tie -> row 1; 7 beats 4
  docs[5].keep_score = 10;
  docs[3].keep_score = 2;
  docs[1].keep_score = docs[6].keep_score = 3;
  docs[7].keep_score = 1;
  got = exact_duplicates(*comm, whole(8), docs, hashes);
  want = {{0, 0, 5, 1.0}, {3, 0, 5, 1.0}, {4, 4, 7, 1.0}, {6, 1, 1, 1.0}};
  expect_same(got, want);
  expect_same(got, reference_exact(docs, hashes));
  // hashes that differ only in their high half are different documents
  const std::vector<Hash128> split = {{1, 1}, {1, 2}};
  EXPECT_TRUE(exact_duplicates(*comm, whole(2), {{0, 0}, {1, 0}}, split).empty());
}

TEST(DedupExact, RandomGroupsMatchReference) {
  auto comm = cluster::make_serial_comm();
  std::mt19937_64 rng(7);
  const size_t n = 5000;
  std::vector<DocRef> docs;
  std::vector<Hash128> hashes;
  for (uint64_t r = 0; r < n; ++r) {
    docs.push_back({r, static_cast<double>(rng() % 3)});
    hashes.push_back({rng() % 1500, 42});
  }
  expect_same(exact_duplicates(*comm, whole(n), docs, hashes), reference_exact(docs, hashes));
}

TEST(DedupExact, BadInputIsAPhaseError) {
  auto comm = cluster::make_serial_comm();
  const std::vector<Hash128> two = {{1, 1}, {1, 1}};
  EXPECT_THROW(exact_duplicates(*comm, whole(2), {{1, 0}, {0, 0}}, two), cluster::PhaseError);
  EXPECT_THROW(exact_duplicates(*comm, whole(2), {{0, 0}, {0, 0}}, two), cluster::PhaseError);
  EXPECT_THROW(exact_duplicates(*comm, whole(2), {{0, 0}, {5, 0}}, two), cluster::PhaseError);
  EXPECT_THROW(exact_duplicates(*comm, whole(2), {{0, 0}}, two), cluster::PhaseError);
  EXPECT_THROW(exact_duplicates(*comm, whole(2),
                                {{0, 0}, {1, std::numeric_limits<double>::quiet_NaN()}}, two),
               cluster::PhaseError);
  try {
    exact_duplicates(*comm, whole(2), {{1, 0}, {0, 0}}, two);
  } catch (const cluster::PhaseError& e) {
    EXPECT_NE(std::string(e.what()).find("row 0 after row 1"), std::string::npos) << e.what();
  }
}

// Signatures of `n` docs with all values distinct (no bucket is shared).
SignatureCorpus distinct_docs(size_t n, int width) {
  SignatureCorpus c;
  for (uint64_t r = 0; r < n; ++r) c.docs.push_back({r, 0.0});
  for (size_t i = 0; i < n * width; ++i) c.signatures.push_back(static_cast<uint32_t>(i + 1));
  return c;
}

TEST(DedupNear, IsolatedDocsHaveNoVerdicts) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.5, 0};
  const SignatureCorpus c = distinct_docs(100, p.width());
  NearStats stats;
  EXPECT_TRUE(near_duplicates(*comm, whole(100), c.docs, c.signatures, p, {}, &stats).empty());
  EXPECT_EQ(stats.buckets, 0);
  EXPECT_EQ(stats.candidate_pairs, 0);
  EXPECT_EQ(stats.clusters, 0);
  EXPECT_EQ(stats.cc_rounds, 1);
  EXPECT_FALSE(stats.step_seconds.empty());
  // and with no documents at all
  EXPECT_TRUE(near_duplicates(*comm, {0, 0}, {}, {}, p, {}, &stats).empty());
}

TEST(DedupNear, StarBucketJoinsEveryMemberToItsSmallestRow) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.25, 0};
  SignatureCorpus c = distinct_docs(1000, p.width());
  // rows 10, 20, ..., 990 share band 2 with row 10: Jaccard 2/8 = 0.25
  for (uint64_t r = 20; r < 1000; r += 10)
    for (int k = 4; k < 6; ++k) c.signatures[r * 8 + k] = c.signatures[10 * 8 + k];
  c.docs[500].keep_score = 1.0;  // the kept one
  NearStats stats;
  const auto got = near_duplicates(*comm, whole(1000), c.docs, c.signatures, p, {}, &stats);
  ASSERT_EQ(got.size(), 98u);
  for (const Verdict& v : got) {
    EXPECT_EQ(v.cluster, 10u);
    EXPECT_EQ(v.representative, 500u);
    EXPECT_DOUBLE_EQ(v.similarity, 0.25);
  }
  EXPECT_EQ(stats.buckets, 1);
  EXPECT_EQ(stats.largest_bucket, 99);
  EXPECT_EQ(stats.candidate_pairs, 98);
  EXPECT_EQ(stats.verified_edges, 98);
  EXPECT_EQ(stats.clusters, 1);
  EXPECT_EQ(stats.largest_cluster, 99);
  EXPECT_EQ(stats.largest_bucket_parts, 1);
  NearStats want;
  expect_same(got, reference_near(c, p, &want));
  // a higher threshold rejects every candidate
  const LshParams strict{4, 2, 0.3, 0};
  EXPECT_TRUE(near_duplicates(*comm, whole(1000), c.docs, c.signatures, strict, {}, &stats).empty());
  EXPECT_EQ(stats.candidate_pairs, 98);
  EXPECT_EQ(stats.verified_edges, 0);
}

TEST(DedupNear, LongShuffledChainIsOneCluster) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.25, 0};
  const size_t n = 3000;
  SignatureCorpus c = distinct_docs(n, p.width());
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  for (size_t k = 0; k + 1 < n; ++k) {  // order[k] and order[k+1] share band k % 2
    const int band = static_cast<int>(k % 2);
    for (int r = 0; r < 2; ++r)
      c.signatures[order[k + 1] * 8 + band * 2 + r] = c.signatures[order[k] * 8 + band * 2 + r];
  }
  NearStats stats;
  const auto got = near_duplicates(*comm, whole(n), c.docs, c.signatures, p, {}, &stats);
  ASSERT_EQ(got.size(), n - 1);
  for (const Verdict& v : got) {
    EXPECT_EQ(v.cluster, 0u);
    EXPECT_EQ(v.representative, 0u);
  }
  EXPECT_EQ(stats.clusters, 1);
  EXPECT_EQ(stats.largest_cluster, static_cast<int64_t>(n));
  EXPECT_EQ(stats.verified_edges, static_cast<int64_t>(n - 1));
  // hooking + pointer jumping: far fewer rounds than the chain's length
  EXPECT_LE(stats.cc_rounds, 16) << "hooking rounds";  // 9 here; 11 for a 100,000-doc chain
  expect_same(got, reference_near(c, p, nullptr));
}

TEST(DedupNear, KeepPolicyTiesGoToTheSmallerRow) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{2, 2, 0.5, 0};
  SignatureCorpus c = distinct_docs(6, p.width());
  // cluster {1, 3, 4}: all share band 0 with row 1 (Jaccard 0.5)
  for (uint64_t r : {3, 4})
    for (int k = 0; k < 2; ++k) c.signatures[r * 4 + k] = c.signatures[1 * 4 + k];
  c.docs[3].keep_score = 7;
  c.docs[4].keep_score = 7;
  const auto got = near_duplicates(*comm, whole(6), c.docs, c.signatures, p, {}, nullptr);
  const std::vector<Verdict> want = {{1, 1, 3, 0.5}, {4, 1, 3, 0.5}};
  expect_same(got, want);
}

TEST(DedupNear, PlantedCorpusMatchesReference) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.25, 0};
  const SignatureCorpus c = planted_corpus(4000, p, 11, false);
  NearStats stats, want;
  const auto got = near_duplicates(*comm, whole(4000), c.docs, c.signatures, p, {}, &stats);
  expect_same(got, reference_near(c, p, &want));
  EXPECT_GT(want.clusters, 100);
  EXPECT_EQ(stats.buckets, want.buckets);
  EXPECT_EQ(stats.largest_bucket, want.largest_bucket);
  EXPECT_EQ(stats.candidate_pairs, want.candidate_pairs);
  EXPECT_EQ(stats.verified_edges, want.verified_edges);
  EXPECT_EQ(stats.clusters, want.clusters);
  EXPECT_EQ(stats.largest_cluster, want.largest_cluster);
}

TEST(DedupNear, ExactJaccardFromShingles) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.6, 0};
  const SignatureCorpus c = planted_corpus(3000, p, 5, true);
  NearStats stats, want;
  const auto got = near_duplicates(*comm, whole(3000), c.docs, c.signatures, p, c.shingles,
                                   &stats);
  expect_same(got, reference_near(c, p, &want));
  EXPECT_GT(want.verified_edges, 0);
  EXPECT_EQ(stats.verified_edges, want.verified_edges);
  // the exact Jaccard is not always a multiple of 1/8 as the estimate is
  bool fractional = false;
  for (const Verdict& v : got) fractional |= std::fmod(v.similarity * 8, 1.0) != 0.0;
  EXPECT_TRUE(fractional);
}

// The verified pairs (dedup.write_pairs): the candidate edges that pass verification.
TEST(DedupNear, VerifiedPairsAreTheReferenceEdges) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.6, 0};
  for (const bool exact : {false, true}) {
    const SignatureCorpus c = planted_corpus(2000, p, 9, exact);
    std::vector<NearPair> got, want;
    NearStats stats, want_stats;
    near_duplicates(*comm, whole(2000), c.docs, c.signatures, p, c.shingles, &stats, &got);
    reference_near(c, p, &want_stats, &want);
    ASSERT_GT(want.size(), 100u);
    EXPECT_EQ(static_cast<int64_t>(got.size()), stats.verified_edges);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].row, want[i].row) << i;
      EXPECT_EQ(got[i].other, want[i].other) << i;
      EXPECT_DOUBLE_EQ(got[i].similarity, want[i].similarity) << i;
      EXPECT_GE(got[i].similarity, p.threshold);
      EXPECT_LT(got[i].other, got[i].row);
    }
  }
}

TEST(DedupNear, BadInputIsAPhaseError) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{4, 2, 0.5, 0};
  const SignatureCorpus c = distinct_docs(4, p.width());
  std::vector<uint32_t> short_sig(c.signatures.begin(), c.signatures.end() - 1);
  EXPECT_THROW(near_duplicates(*comm, whole(4), c.docs, short_sig, p, {}, nullptr),
               cluster::PhaseError);
  const LshParams too_wide{4, 3, 0.5, 8};
  EXPECT_THROW(near_duplicates(*comm, whole(4), c.docs, c.signatures, too_wide, {}, nullptr),
               cluster::PhaseError);
  std::vector<std::vector<uint64_t>> unsorted = {{2, 1}, {}, {}, {}};
  EXPECT_THROW(near_duplicates(*comm, whole(4), c.docs, c.signatures, p, unsorted, nullptr),
               cluster::PhaseError);
  EXPECT_THROW(near_duplicates(*comm, {0, 3}, c.docs, c.signatures, p, {}, nullptr),
               cluster::PhaseError);
}

// Signatures wider than bands x rows: the extra values count in the Jaccard estimate only.
TEST(DedupNear, WiderSignaturesEstimateWithAllValues) {
  auto comm = cluster::make_serial_comm();
  const LshParams p{2, 2, 0.5, 8};  // bands use values 0..3, Jaccard uses 0..7
  SignatureCorpus c = distinct_docs(2, 8);
  for (int k : {0, 1, 6, 7}) c.signatures[8 + k] = c.signatures[k];  // 4 of 8 shared
  const auto got = near_duplicates(*comm, whole(2), c.docs, c.signatures, p, {}, nullptr);
  const std::vector<Verdict> want = {{1, 0, 0, 0.5}};
  expect_same(got, want);
}

}  // namespace
}  // namespace sf::stages::dedup
