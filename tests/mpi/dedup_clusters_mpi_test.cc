// MPI tests of stages/dedup/clusters.h: every rank builds the same global corpus, passes its
// row range, and its verdicts must equal the brute-force reference's verdicts for its rows,
// for any number of ranks (run at 1, 2 and 4). Also: a bucket of 1,000,000 members finishes
// in seconds and costs its owner one entry per rank; ranks with no rows; and bad input on one
// rank throws the same PhaseError on every rank.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "stages/dedup/clusters.h"
#include "tests/dedup_reference.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages::dedup {
namespace {

using sf::testing::planted_corpus;
using sf::testing::problems_on_any_rank;
using sf::testing::reference_exact;
using sf::testing::reference_near;
using sf::testing::SignatureCorpus;
using sf::testing::world;

// This rank's part of a whole corpus: docs, signatures (width values each), shingles.
struct Part {
  cluster::RowRange range;
  std::vector<DocRef> docs;
  std::vector<uint32_t> signatures;
  std::vector<std::vector<uint64_t>> shingles;
};

Part part_of(const SignatureCorpus& c, int width, const cluster::RowRange& range) {
  Part p;
  p.range = range;
  p.docs.assign(c.docs.begin() + range.begin, c.docs.begin() + range.end);
  p.signatures.assign(c.signatures.begin() + range.begin * width,
                      c.signatures.begin() + range.end * width);
  if (!c.shingles.empty())
    p.shingles.assign(c.shingles.begin() + range.begin, c.shingles.begin() + range.end);
  return p;
}

// "" when `got` equals the reference's verdicts for rows in `range`.
std::string compare(const std::vector<Verdict>& got, const std::vector<Verdict>& reference,
                    const cluster::RowRange& range) {
  std::vector<Verdict> want;
  for (const Verdict& v : reference)
    if (static_cast<int64_t>(v.row) >= range.begin && static_cast<int64_t>(v.row) < range.end)
      want.push_back(v);
  if (got.size() != want.size())
    return std::to_string(got.size()) + " verdicts, reference " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (!sf::testing::verdicts_equal(got[i], want[i]))
      return "verdict for row " + std::to_string(got[i].row) + " (cluster " +
             std::to_string(got[i].cluster) + ", rep " + std::to_string(got[i].representative) +
             ") differs from the reference's row " + std::to_string(want[i].row) + " (cluster " +
             std::to_string(want[i].cluster) + ", rep " +
             std::to_string(want[i].representative) + ")";
  return "";
}

void expect_stats(const NearStats& got, const NearStats& want) {
  EXPECT_EQ(got.buckets, want.buckets);
  EXPECT_EQ(got.largest_bucket, want.largest_bucket);
  EXPECT_EQ(got.candidate_pairs, want.candidate_pairs);
  EXPECT_EQ(got.verified_edges, want.verified_edges);
  EXPECT_EQ(got.clusters, want.clusters);
  EXPECT_EQ(got.largest_cluster, want.largest_cluster);
}

TEST(DedupClustersMpi, NearVerdictsMatchReferenceForAnyRankCount) {
  cluster::Comm& comm = world();
  for (const bool exact : {false, true}) {
    const LshParams params{4, 2, exact ? 0.6 : 0.25, 0};
    const SignatureCorpus c = planted_corpus(6000, params, 21, exact);
    NearStats want;
    std::vector<NearPair> want_pairs;
    const std::vector<Verdict> reference = reference_near(c, params, &want, &want_pairs);
    ASSERT_GT(want.clusters, 100);
    const Part p = part_of(c, params.width(), cluster::row_range(6000, comm.rank(), comm.size()));
    NearStats stats;
    std::vector<NearPair> pairs;
    const auto got =
        near_duplicates(comm, p.range, p.docs, p.signatures, params, p.shingles, &stats, &pairs);
    const std::string problems = problems_on_any_rank(comm, compare(got, reference, p.range));
    EXPECT_EQ(problems, "") << (exact ? "exact Jaccard" : "estimated Jaccard");
    expect_stats(stats, want);
    // The verified pairs of this rank's rows: the reference's edges, in the same order.
    std::string pair_problem;
    size_t k = 0;
    for (const NearPair& w : want_pairs) {
      if (static_cast<int64_t>(w.row) < p.range.begin || static_cast<int64_t>(w.row) >= p.range.end)
        continue;
      if (k >= pairs.size() || pairs[k].row != w.row || pairs[k].other != w.other ||
          std::abs(pairs[k].similarity - w.similarity) > 1e-12) {
        pair_problem = "verified pair " + std::to_string(k) + " differs from the reference's (" +
                       std::to_string(w.row) + ", " + std::to_string(w.other) + ")";
        break;
      }
      ++k;
    }
    if (pair_problem.empty() && k != pairs.size())
      pair_problem =
          std::to_string(pairs.size()) + " verified pairs, reference " + std::to_string(k);
    EXPECT_EQ(problems_on_any_rank(comm, pair_problem), "");
  }
}

// Documents with gaps between their rows (as after exact dedup): rows not divisible by 3 only.
TEST(DedupClustersMpi, RowsWithGapsMatchReference) {
  cluster::Comm& comm = world();
  const LshParams params{4, 2, 0.25, 0};
  const SignatureCorpus whole = planted_corpus(6000, params, 33, false);
  SignatureCorpus c;
  for (size_t i = 0; i < whole.docs.size(); ++i) {
    if (i % 3 == 0) continue;
    c.docs.push_back(whole.docs[i]);
    c.signatures.insert(c.signatures.end(), whole.signatures.begin() + i * 8,
                        whole.signatures.begin() + (i + 1) * 8);
  }
  NearStats want;
  const std::vector<Verdict> reference = reference_near(c, params, &want);
  ASSERT_GT(want.clusters, 50);
  const cluster::RowRange range = cluster::row_range(6000, comm.rank(), comm.size());
  Part p;
  p.range = range;
  for (size_t i = 0; i < c.docs.size(); ++i)
    if (static_cast<int64_t>(c.docs[i].row) >= range.begin &&
        static_cast<int64_t>(c.docs[i].row) < range.end) {
      p.docs.push_back(c.docs[i]);
      p.signatures.insert(p.signatures.end(), c.signatures.begin() + i * 8,
                          c.signatures.begin() + (i + 1) * 8);
    }
  NearStats stats;
  const auto got = near_duplicates(comm, p.range, p.docs, p.signatures, params, {}, &stats);
  EXPECT_EQ(problems_on_any_rank(comm, compare(got, reference, p.range)), "");
  expect_stats(stats, want);
}

// Uneven ranges, and ranks that hold no rows at all (fewer rows than ranks at the end).
TEST(DedupClustersMpi, UnevenAndEmptyRanges) {
  cluster::Comm& comm = world();
  const LshParams params{4, 2, 0.25, 0};
  for (const size_t n : {size_t{3}, size_t{1000}}) {
    SignatureCorpus c = planted_corpus(n, params, 4, false);
    if (n == 3)  // rows 0 and 2 share band 0
      for (int k = 0; k < 2; ++k) c.signatures[2 * 8 + k] = c.signatures[k];
    const std::vector<Verdict> reference = reference_near(c, params, nullptr);
    if (n == 3) {
      ASSERT_EQ(reference.size(), 1u);
    }
    // rank r gets a share that grows with r: rank 0 holds the fewest
    const int64_t total = static_cast<int64_t>(n);
    const int64_t weight_sum = int64_t{comm.size()} * (comm.size() + 1) / 2;
    int64_t begin = 0;
    for (int r = 0; r < comm.rank(); ++r) begin += total * (r + 1) / weight_sum;
    int64_t end = comm.rank() + 1 == comm.size() ? total
                                                 : begin + total * (comm.rank() + 1) / weight_sum;
    const Part p = part_of(c, params.width(), {begin, end});
    const auto got = near_duplicates(comm, p.range, p.docs, p.signatures, params, {}, nullptr);
    EXPECT_EQ(problems_on_any_rank(comm, compare(got, reference, p.range)), "") << n << " rows";
  }
}

TEST(DedupClustersMpi, ExactVerdictsMatchReferenceForAnyRankCount) {
  cluster::Comm& comm = world();
  const size_t n = 20000;
  std::mt19937_64 rng(99);
  std::vector<DocRef> docs;
  std::vector<Hash128> hashes;
  for (uint64_t r = 0; r < n; ++r) {
    docs.push_back({r, static_cast<double>(rng() % 3)});
    // a hot hash held by a fifth of the corpus, the rest in small groups
    hashes.push_back(rng() % 5 == 0 ? Hash128{12345, 678} : Hash128{rng() % 6000, rng() % 2});
  }
  const std::vector<Verdict> reference = reference_exact(docs, hashes);
  const cluster::RowRange range = cluster::row_range(n, comm.rank(), comm.size());
  const std::vector<DocRef> mine(docs.begin() + range.begin, docs.begin() + range.end);
  const std::vector<Hash128> my_hashes(hashes.begin() + range.begin, hashes.begin() + range.end);
  const auto got = exact_duplicates(comm, range, mine, my_hashes);
  EXPECT_EQ(problems_on_any_rank(comm, compare(got, reference, range)), "");
}

// A million documents in one band bucket (band 0 shared, band 1 distinct): the owner of the
// bucket receives one entry per rank, the star becomes one cluster, and it takes seconds.
TEST(DedupClustersMpi, MillionMemberBucketDoesNotStallOneRank) {
  cluster::Comm& comm = world();
  const int64_t n = 1000000;
  const LshParams params{2, 2, 0.5, 0};
  const cluster::RowRange range = cluster::row_range(n, comm.rank(), comm.size());
  std::vector<DocRef> docs;
  std::vector<uint32_t> signatures;
  for (int64_t r = range.begin; r < range.end; ++r) {
    docs.push_back({static_cast<uint64_t>(r), 0.0});
    signatures.insert(signatures.end(), {7u, 9u, static_cast<uint32_t>(2 * r + 1),
                                         static_cast<uint32_t>(2 * r + 2)});
  }
  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  NearStats stats;
  const auto got = near_duplicates(comm, range, docs, signatures, params, {}, &stats);
  const double seconds = comm.max(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (comm.rank() == 0) {
    std::printf("[ stats    ] 1M bucket at %d ranks: %.2f s, max bucket entries on one rank %lld,"
                " most parts of one bucket %lld, cc rounds %lld, jump rounds %lld\n",
                comm.size(), seconds, static_cast<long long>(stats.max_rank_bucket_entries),
                static_cast<long long>(stats.largest_bucket_parts),
                static_cast<long long>(stats.cc_rounds),
                static_cast<long long>(stats.jump_rounds));
    for (const auto& [step, s] : stats.step_seconds)
      std::printf("[ stats    ]   %s: %.3f s\n", step.c_str(), s);
  }
  EXPECT_EQ(stats.largest_bucket, n);
  EXPECT_EQ(stats.buckets, 1);
  EXPECT_EQ(stats.candidate_pairs, n - 1);
  EXPECT_EQ(stats.verified_edges, n - 1);
  EXPECT_EQ(stats.clusters, 1);
  EXPECT_EQ(stats.largest_cluster, n);
  // the bucket reached its owner as one entry per rank, never as its members
  EXPECT_LE(stats.largest_bucket_parts, comm.size());
  // each owner gets ~n/ranks entries: its share of band 1's distinct keys, plus the one bucket
  if (comm.size() > 1) {
    EXPECT_LT(stats.max_rank_bucket_entries, n / comm.size() * 11 / 10 + comm.size());
  }
  EXPECT_LT(seconds, 60.0);
  std::string problem;
  if (static_cast<int64_t>(got.size()) != range.size() - (comm.rank() == 0 ? 1 : 0))
    problem = std::to_string(got.size()) + " verdicts for " + std::to_string(range.size()) +
              " rows";
  for (const Verdict& v : got)
    if (v.cluster != 0 || v.representative != 0 || v.similarity != 0.5) {
      problem = "row " + std::to_string(v.row) + " has cluster " + std::to_string(v.cluster);
      break;
    }
  EXPECT_EQ(problems_on_any_rank(comm, problem), "");
}

// A bad input on the last rank only: every rank throws the same PhaseError naming it.
TEST(DedupClustersMpi, BadInputOnOneRankFailsAllRanks) {
  cluster::Comm& comm = world();
  const LshParams params{4, 2, 0.5, 0};
  const SignatureCorpus c = planted_corpus(400, params, 8, false);
  Part p = part_of(c, params.width(), cluster::row_range(400, comm.rank(), comm.size()));
  const bool bad = comm.rank() == comm.size() - 1;
  auto expect_phase_error = [&](const std::function<void()>& call, const std::string& detail) {
    std::string problem;
    try {
      call();
      problem = "no error";
    } catch (const cluster::PhaseError& e) {
      if (e.failed_rank() != comm.size() - 1)
        problem = "failed rank " + std::to_string(e.failed_rank());
      else if (e.detail().find(detail) == std::string::npos)
        problem = "message: " + std::string(e.what());
    }
    EXPECT_EQ(problems_on_any_rank(comm, problem), "") << detail;
  };
  std::vector<uint32_t> signatures = p.signatures;
  if (bad) signatures.pop_back();
  expect_phase_error(
      [&] { near_duplicates(comm, p.range, p.docs, signatures, params, {}, nullptr); },
      "signature values");
  std::vector<DocRef> docs = p.docs;
  if (bad) std::swap(docs[0], docs[1]);
  expect_phase_error(
      [&] { near_duplicates(comm, p.range, docs, p.signatures, params, {}, nullptr); },
      "not sorted");
  if (comm.size() > 1) {  // with one rank there is no other rank to disagree with
    LshParams other = params;
    if (bad) other.threshold = 0.7;
    expect_phase_error(
        [&] { near_duplicates(comm, p.range, p.docs, p.signatures, other, {}, nullptr); },
        "disagree");
  }
  std::vector<Hash128> hashes(p.docs.size(), Hash128{1, 2});
  if (bad) hashes.pop_back();
  expect_phase_error([&] { exact_duplicates(comm, p.range, p.docs, hashes); }, "hashes for");
  if (comm.size() > 1) {  // every rank claims all rows: the ranges overlap
    std::string problem;
    try {
      exact_duplicates(comm, {0, 400}, {}, {});
      problem = "no error";
    } catch (const cluster::PhaseError& e) {
      if (e.detail().find("overlap") == std::string::npos) problem = e.what();
    }
    EXPECT_EQ(problems_on_any_rank(comm, problem), "");
  }
  // and the ranks still work together afterwards
  const auto got = near_duplicates(comm, p.range, p.docs, p.signatures, params, {}, nullptr);
  EXPECT_EQ(problems_on_any_rank(comm, compare(got, reference_near(c, params, nullptr), p.range)),
            "");
}

}  // namespace
}  // namespace sf::stages::dedup
