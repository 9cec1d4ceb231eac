// Unit tests for stages/eval.h on one rank: knn_recall against its definition, exact
// neighbours against a brute force in double precision (L2 and IP, any batch size, ties by
// smaller id), and evaluate_index on IVF-Flat (exact at nprobe = nlist, monotone in nprobe).
#include "stages/eval.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/vector_file.h"
#include "stages/ivf_index.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

using sf::testing::brute_force;

Neighbours truth_of(const std::vector<std::vector<int64_t>>& rows) {
  Neighbours t;
  t.nq = static_cast<int64_t>(rows.size());
  t.k = static_cast<int>(rows.front().size());
  for (const auto& r : rows) t.ids.insert(t.ids.end(), r.begin(), r.end());
  return t;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

// rows x d of a Gaussian mixture (seed) in an IVF16,Flat index, nq queries of the same mixture
// (seed + 1) and their exact top-k over the rows.
struct SmallIvf {
  std::vector<float> queries;
  Neighbours truth;
  std::unique_ptr<faiss::Index> index;
};
SmallIvf small_ivf(int d, int64_t rows, int64_t nq, int clusters, uint64_t seed, int k) {
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, clusters, seed);
  SmallIvf out;
  out.queries = sf::testing::gaussian_mixture(nq, d, clusters, seed + 1);
  sf::testing::TempDir dir;
  io::write_fvecs(dir.file("x.fvecs"), x.data(), rows, d);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  auto comm = cluster::make_serial_comm();
  out.truth = exact_neighbours(*comm, corpus, cluster::row_range(rows, 0, 1), out.queries.data(),
                               nq, k, false, 256);
  out.index = make_ivf_index(d, "IVF16,Flat", false);
  out.index->train(rows, x.data());
  out.index->add(rows, x.data());
  return out;
}

// The definition: |set(found[:r]) ∩ set(truth[:r])| / r, averaged over queries.
double recall_by_definition(const std::vector<int64_t>& found, int found_k, const Neighbours& truth,
                            int r) {
  double total = 0;
  for (int64_t q = 0; q < truth.nq; ++q) {
    const std::set<int64_t> f(found.begin() + q * found_k, found.begin() + q * found_k + r);
    const std::set<int64_t> t(truth.ids.begin() + q * truth.k, truth.ids.begin() + q * truth.k + r);
    std::vector<int64_t> both;
    std::set_intersection(f.begin(), f.end(), t.begin(), t.end(), std::back_inserter(both));
    total += static_cast<double>(both.size()) / r;
  }
  return total / static_cast<double>(truth.nq);
}

// ---- knn_recall ---------------------------------------------------------------------------

TEST(KnnRecall, FoundEqualToTruthIsOne) {
  const auto rows = std::vector<std::vector<int64_t>>{{4, 8, 15, 16}, {23, 42, 0, 1}};
  const Neighbours truth = truth_of(rows);
  for (int r : {1, 2, 4}) EXPECT_DOUBLE_EQ(knn_recall(flatten(rows), 4, truth, r), 1.0) << r;
}

TEST(KnnRecall, DisjointIsZero) {
  const Neighbours truth = truth_of({{1, 2, 3}, {4, 5, 6}});
  const std::vector<int64_t> found = flatten({{7, 8, 9}, {10, 11, 12}});
  for (int r : {1, 2, 3}) EXPECT_DOUBLE_EQ(knn_recall(found, 3, truth, r), 0.0) << r;
}

TEST(KnnRecall, OrderWithinTheTopRDoesNotMatter) {
  const Neighbours truth = truth_of({{1, 2, 3, 4}});
  EXPECT_DOUBLE_EQ(knn_recall({4, 3, 2, 1}, 4, truth, 4), 1.0);
  // At r = 2 only {4, 3} vs {1, 2}: nothing in common.
  EXPECT_DOUBLE_EQ(knn_recall({4, 3, 2, 1}, 4, truth, 2), 0.0);
}

TEST(KnnRecall, OnlyTheFirstRFoundCount) {
  // The true neighbour 1 is found at position 3 and counts from r = 3 on; 3 is found at
  // position 4, beyond r = 3, and never counts.
  const Neighbours truth = truth_of({{1, 2, 3}});
  const std::vector<int64_t> found = {2, 9, 1, 3, 7};  // found_k = 5 > truth.k
  EXPECT_DOUBLE_EQ(knn_recall(found, 5, truth, 1), 0.0);
  EXPECT_DOUBLE_EQ(knn_recall(found, 5, truth, 2), 1.0 / 2);
  EXPECT_DOUBLE_EQ(knn_recall(found, 5, truth, 3), 2.0 / 3);
}

TEST(KnnRecall, AveragesOverQueries) {
  const Neighbours truth = truth_of({{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  // 2/2, 1/2, 0/2, 1/2 -> 0.5.
  const std::vector<int64_t> found = flatten({{2, 1}, {3, 9}, {9, 9}, {0, 8}});
  EXPECT_DOUBLE_EQ(knn_recall(found, 2, truth, 2), 0.5);
}

TEST(KnnRecall, RandomCasesMatchTheDefinition) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 200; ++trial) {
    const int nq = 1 + static_cast<int>(rng() % 5);
    const int truth_k = 1 + static_cast<int>(rng() % 12);
    const int found_k = 1 + static_cast<int>(rng() % 12);
    const int r = 1 + static_cast<int>(rng() % std::min(truth_k, found_k));
    // Ids distinct within each row, drawn from a small range so rows overlap often.
    auto row = [&](int k) {
      std::vector<int64_t> ids(20);
      std::iota(ids.begin(), ids.end(), 0);
      std::shuffle(ids.begin(), ids.end(), rng);
      ids.resize(static_cast<size_t>(k));
      return ids;
    };
    Neighbours truth;
    truth.nq = nq;
    truth.k = truth_k;
    std::vector<int64_t> found;
    for (int q = 0; q < nq; ++q) {
      const auto t = row(truth_k);
      const auto f = row(found_k);
      truth.ids.insert(truth.ids.end(), t.begin(), t.end());
      found.insert(found.end(), f.begin(), f.end());
    }
    EXPECT_DOUBLE_EQ(knn_recall(found, found_k, truth, r),
                     recall_by_definition(found, found_k, truth, r))
        << "trial " << trial;
  }
}

TEST(KnnRecall, RepeatedFoundIdCountsOnce) {
  // Bug: knn_recall counts every position of found[:r] whose id is in truth[:r], so an id
  // found twice (or -1 padding in both found and truth) counts twice, above the documented
  // |found[:R] ∩ truth[:R]| / R.
  const Neighbours truth = truth_of({{5, 6}});
  EXPECT_DOUBLE_EQ(knn_recall({5, 5}, 2, truth, 2), 0.5);
  const Neighbours short_truth = truth_of({{0, 1, -1, -1}});  // corpus of two rows, k = 4
  EXPECT_DOUBLE_EQ(knn_recall({0, -1, -1, -1}, 4, short_truth, 4),
                   recall_by_definition({0, -1, -1, -1}, 4, short_truth, 4));
}

// ---- exact_neighbours ---------------------------------------------------------------------

class ExactNeighbours : public ::testing::Test {
 protected:
  static constexpr int kDim = 24;
  static constexpr int64_t kRows = 3000;
  static constexpr int64_t kQueries = 12;

  void SetUp() override {
    x_ = sf::testing::gaussian_mixture(kRows, kDim, 15, 31);
    queries_ = sf::testing::gaussian_mixture(kQueries, kDim, 15, 32);
    path_ = dir_.file("base.fvecs");
    io::write_fvecs(path_, x_.data(), kRows, kDim);
  }

  Neighbours run(io::VectorCorpus& corpus, int k, bool ip, int64_t batch_rows) {
    auto comm = cluster::make_serial_comm();
    return exact_neighbours(*comm, corpus, cluster::row_range(corpus.rows(), 0, 1), queries_.data(),
                            kQueries, k, ip, batch_rows);
  }

  sf::testing::TempDir dir_;
  std::string path_;
  std::vector<float> x_, queries_;
};

TEST_F(ExactNeighbours, MatchesBruteForceForAnyBatchSize) {
  io::VectorCorpus corpus({path_}, io::VectorFormat::kFvecs);
  for (bool ip : {false, true}) {
    const std::vector<int64_t> expected = brute_force(x_, kDim, queries_, 10, ip);
    for (int64_t batch : {int64_t{1}, int64_t{7}, int64_t{256}, int64_t{100000}}) {
      SCOPED_TRACE(std::string(ip ? "IP" : "L2") + " batch_rows=" + std::to_string(batch));
      const Neighbours got = run(corpus, 10, ip, batch);
      EXPECT_EQ(got.nq, kQueries);
      EXPECT_EQ(got.k, 10);
      EXPECT_EQ(got.ids, expected);
      ASSERT_EQ(got.distances.size(), static_cast<size_t>(kQueries) * 10);
      for (int64_t q = 0; q < kQueries; ++q)
        for (int j = 1; j < 10; ++j) {
          const float prev = got.distances[q * 10 + j - 1], cur = got.distances[q * 10 + j];
          if (ip) {
            EXPECT_GE(prev, cur) << "query " << q;
          } else {
            EXPECT_LE(prev, cur) << "query " << q;
          }
        }
    }
  }
}

TEST_F(ExactNeighbours, TiesAreBrokenByTheSmallerId) {
  // Rows h..2h-1 repeat rows 0..h-1: each pair is at exactly the same distance from any
  // query, so wherever the later copy appears, the earlier one must precede it.
  const int64_t half = 700;
  std::vector<float> twice(x_.begin(), x_.begin() + half * kDim);
  twice.insert(twice.end(), x_.begin(), x_.begin() + half * kDim);
  const std::string path = dir_.file("twice.fvecs");
  io::write_fvecs(path, twice.data(), 2 * half, kDim);
  io::VectorCorpus corpus({path}, io::VectorFormat::kFvecs);
  for (int64_t batch : {int64_t{50}, int64_t{333}, int64_t{5000}}) {
    for (int k : {1, 5, 10}) {
      const Neighbours got = run(corpus, k, false, batch);
      for (int64_t q = 0; q < kQueries; ++q) {
        const auto first = got.ids.begin() + q * k, last = first + k;
        for (auto it = first; it != last; ++it) {
          if (*it < half) continue;
          const auto twin = std::find(first, it, *it - half);
          EXPECT_NE(twin, it) << "batch " << batch << " k " << k << " query " << q << ": id " << *it
                              << " listed without or before its twin " << *it - half;
        }
      }
    }
  }
}

// ---- evaluate_index -----------------------------------------------------------------------

TEST(EvaluateIndex, IvfFlatIsExactAtFullNprobeAndRecallGrowsWithNprobe) {
  omp_set_num_threads(1);
  const int d = 16, nlist = 16;
  const int64_t rows = 4000, nq = 60;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 40, 41);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 40, 42);
  sf::testing::TempDir dir;
  io::write_fvecs(dir.file("x.fvecs"), x.data(), rows, d);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  auto comm = cluster::make_serial_comm();
  const Neighbours truth = exact_neighbours(*comm, corpus, cluster::row_range(rows, 0, 1), q.data(),
                                            nq, 10, false, 1000);

  auto index = make_ivf_index(d, "IVF16,Flat", false);
  index->train(rows, x.data());
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(rows));
  std::iota(ids.begin(), ids.end(), 0);
  index->add_with_ids(rows, x.data(), ids.data());

  const std::vector<int> nprobes = {1, 2, 4, 8, nlist};
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<EvalPoint> points =
      evaluate_index(*comm, *index, q.data(), nq, truth, 10, nprobes);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(points.size(), nprobes.size());
  // Each point's time is its own search: positive, together within the call's wall time, and
  // QPS is the queries over that time.
  double searched = 0;
  for (const EvalPoint& p : points) searched += p.seconds;
  EXPECT_LE(searched, wall);
  for (size_t i = 0; i < points.size(); ++i) {
    SCOPED_TRACE("nprobe " + std::to_string(nprobes[i]));
    EXPECT_EQ(points[i].nprobe, nprobes[i]);
    ASSERT_TRUE(points[i].recall_at_1.has_value());
    ASSERT_TRUE(points[i].recall_at_10.has_value());
    EXPECT_FALSE(points[i].recall_at_100.has_value()) << "truth has only 10 neighbours";
    EXPECT_GT(points[i].seconds, 0.0);
    EXPECT_DOUBLE_EQ(points[i].qps, static_cast<double>(nq) / points[i].seconds);
    if (i > 0) {
      EXPECT_GE(*points[i].recall_at_10, *points[i - 1].recall_at_10);
      EXPECT_GE(*points[i].recall_at_1, *points[i - 1].recall_at_1);
    }
  }
  EXPECT_DOUBLE_EQ(*points.back().recall_at_10, 1.0);
  EXPECT_DOUBLE_EQ(*points.back().recall_at_1, 1.0);
  // The data makes one probe miss some neighbours, so the growth above is real.
  EXPECT_LT(*points.front().recall_at_10, 1.0);
}

TEST(EvaluateIndex, RecallAt100NeedsAHundredTrueNeighbours) {
  omp_set_num_threads(1);
  const int d = 8;
  const int64_t rows = 1000, nq = 5;
  auto comm = cluster::make_serial_comm();
  const SmallIvf ivf = small_ivf(d, rows, nq, 10, 51, 100);
  const std::vector<float>& q = ivf.queries;
  const Neighbours& truth = ivf.truth;
  faiss::Index* index = ivf.index.get();
  const std::vector<EvalPoint> points =
      evaluate_index(*comm, *index, q.data(), nq, truth, 10, {16});
  ASSERT_EQ(points.size(), 1u);
  ASSERT_TRUE(points[0].recall_at_100.has_value());
  EXPECT_DOUBLE_EQ(*points[0].recall_at_100, 1.0);
  EXPECT_DOUBLE_EQ(*points[0].recall_at_10, 1.0);
}

// ---- smallest_nprobe ----------------------------------------------------------------------

// A measure over a recall function that counts what it measured.
struct RecallCurve {
  std::function<double(int)> recall;
  std::vector<int> measured;
  EvalPoint operator()(int n) {
    measured.push_back(n);
    EvalPoint p;
    p.nprobe = n;
    p.recall_at_k = recall(n);
    p.qps = 1000.0 / n;
    return p;
  }
  std::vector<EvalPoint> at(const std::vector<int>& ns) {
    std::vector<EvalPoint> out;
    for (int n : ns) out.push_back((*this)(n));
    measured.clear();
    return out;
  }
};

TEST(SmallestNprobe, BisectsBetweenTheCurvePointsThatBracketTheTarget) {
  // recall(n) = n / 100, nlist 100: the smallest n reaching 0.9 is 90, past curve point 32.
  RecallCurve curve{[](int n) { return n / 100.0; }, {}};
  const auto measure = std::ref(curve);
  for (double target : {0.9, 0.05, 0.01, 0.33, 1.0}) {
    SCOPED_TRACE(target);
    const std::vector<EvalPoint> points = curve.at({1, 8, 32});
    const NprobeChoice c = smallest_nprobe(points, 100, target, measure);
    ASSERT_TRUE(c.reached);
    const int want = static_cast<int>(std::ceil(target * 100 - 1e-9));
    EXPECT_EQ(c.point.nprobe, want);
    EXPECT_GE(*c.point.recall_at_k, target);
    EXPECT_DOUBLE_EQ(c.point.qps, 1000.0 / want) << "the measured point at the answer";
    // Nothing measured twice, and few measurements: the bracket, then log2 of its width.
    std::set<int> once(curve.measured.begin(), curve.measured.end());
    EXPECT_EQ(once.size(), curve.measured.size());
    EXPECT_LE(curve.measured.size(), 8u);
    curve.measured.clear();
  }
}

TEST(SmallestNprobe, ACurvePointThatReachesItNeedsOnlyItsPredecessorsGap) {
  RecallCurve curve{[](int n) { return n >= 8 ? 0.95 : 0.5; }, {}};
  const NprobeChoice c = smallest_nprobe(curve.at({1, 8, 32}), 64, 0.9, std::ref(curve));
  ASSERT_TRUE(c.reached);
  EXPECT_EQ(c.point.nprobe, 8);
  EXPECT_EQ(curve.measured, (std::vector<int>{4, 6, 7})) << "bisection between 1 and 8";
  RecallCurve first{[](int) { return 1.0; }, {}};
  const NprobeChoice one = smallest_nprobe(first.at({1, 8}), 64, 0.9, std::ref(first));
  EXPECT_EQ(one.point.nprobe, 1);
  EXPECT_TRUE(first.measured.empty());
}

TEST(SmallestNprobe, NotReachedReportsTheBestRecallAtNlist) {
  RecallCurve curve{[](int n) { return 0.5 + n / 1000.0; }, {}};
  // Curve points above nlist are ignored (FAISS probes every list there).
  const NprobeChoice c = smallest_nprobe(curve.at({1, 8, 32, 128}), 64, 0.9, std::ref(curve));
  EXPECT_FALSE(c.reached);
  EXPECT_EQ(c.point.nprobe, 64);
  EXPECT_DOUBLE_EQ(*c.point.recall_at_k, 0.564);
  EXPECT_EQ(curve.measured, std::vector<int>{64});
}

TEST(SmallestNprobe, ANonMonotoneCurveGivesAValueWhosePredecessorMisses) {
  // Reaches at 3, misses at 4-5, reaches from 6: bisection between 1 and 8 finds 6 (only the
  // result and its predecessor are checked), a larger value than the true smallest.
  RecallCurve curve{[](int n) { return n == 3 || n >= 6 ? 0.95 : 0.5; }, {}};
  const NprobeChoice c = smallest_nprobe(curve.at({1, 8}), 16, 0.9, std::ref(curve));
  EXPECT_EQ(c.point.nprobe, 6);
  EXPECT_LT(curve.recall(c.point.nprobe - 1), 0.9);
}

TEST(RecommendNprobe, EvaluatesTheIndexAndIsExactAtItsAnswer) {
  omp_set_num_threads(1);
  const int d = 16;
  const int64_t rows = 4000, nq = 60;
  auto comm = cluster::make_serial_comm();
  const SmallIvf ivf = small_ivf(d, rows, nq, 40, 41, 10);
  const std::vector<float>& q = ivf.queries;
  const Neighbours& truth = ivf.truth;
  faiss::Index* index = ivf.index.get();
  const std::vector<EvalPoint> curve = evaluate_index(*comm, *index, q.data(), nq, truth, 10, {1});
  ASSERT_LT(*curve[0].recall_at_k, 1.0);
  const NprobeChoice c = recommend_nprobe(*comm, *index, q.data(), nq, truth, 10, curve, 1.0);
  ASSERT_TRUE(c.reached);
  EXPECT_DOUBLE_EQ(*c.point.recall_at_k, 1.0);
  const EvalPoint before =
      evaluate_index(*comm, *index, q.data(), nq, truth, 10, {c.point.nprobe - 1}).front();
  EXPECT_LT(*before.recall_at_k, 1.0);
  EXPECT_EQ(*before.recall_at_k, *before.recall_at_10) << "k = 10";
}

}  // namespace
}  // namespace sf::stages
