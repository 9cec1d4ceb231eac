#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cluster/comm.h"
#include "stages/dedup/semantic.h"

namespace sf::stages::dedup {
namespace {

// Groups of near-copies: each group has a random unit "original" and copies at cosine ~0.999;
// different groups are nearly orthogonal (dim 64, random directions: |cos| < 0.6).
struct Planted {
  std::vector<SemanticDoc> docs;
  std::vector<float> vectors;
  std::vector<int> group;  // per doc
};

void normalise(float* v, int d) {
  double n = 0;
  for (int j = 0; j < d; ++j) n += double(v[j]) * v[j];
  for (int j = 0; j < d; ++j) v[j] = float(v[j] / std::sqrt(n));
}

Planted plant(int groups, int copies, int d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Planted p;
  uint64_t row = 0;
  for (int g = 0; g < groups; ++g) {
    std::vector<float> base(d);
    for (float& x : base) x = normal(rng);
    normalise(base.data(), d);
    for (int c = 0; c < copies; ++c) {
      std::vector<float> v = base;
      for (float& x : v) x += 0.005f * normal(rng);
      normalise(v.data(), d);
      p.vectors.insert(p.vectors.end(), v.begin(), v.end());
      // Lists: groups go to lists g % 3; keep score: a copy in the middle wins in each group.
      p.docs.push_back({row++, g % 3, c == copies / 2 ? 10.0 : 1.0});
      p.group.push_back(g);
    }
  }
  return p;
}

TEST(SemanticDedup, KeepsOnePerGroupByThePolicy) {
  const int d = 64;
  Planted p = plant(12, 5, d, 3);
  auto comm = cluster::make_serial_comm();
  SemanticStats stats;
  const auto verdicts = semantic_duplicates(*comm, p.docs, p.vectors.data(), d, {}, &stats);
  ASSERT_EQ(verdicts.size(), 12u * 4u);  // all but one copy of every group
  for (const SemanticVerdict& v : verdicts) {
    const int g = p.group[v.row];
    EXPECT_EQ(v.representative, static_cast<uint64_t>(g * 5 + 2)) << "row " << v.row;
    EXPECT_GT(v.similarity, 0.99);
    EXPECT_LE(v.similarity, 1.0 + 1e-6);
  }
  for (size_t i = 1; i < verdicts.size(); ++i) EXPECT_LT(verdicts[i - 1].row, verdicts[i].row);
  EXPECT_EQ(stats.lists, 3);
  EXPECT_EQ(stats.largest_list, 4 * 5);
  EXPECT_EQ(stats.pairs, 3 * (20 * 19 / 2));
  ASSERT_EQ(stats.eps.size(), stats.removed.size());
  for (size_t e = 0; e < stats.eps.size(); ++e)
    EXPECT_EQ(stats.removed[e], 48) << "eps " << stats.eps[e] << ": the copies are at ~0.999";
}

// Lists longer than the 256-row tiles of the kernel (BLAS for earlier tiles, SIMD inside a
// tile): the same removals as a brute-force double-precision reference, representatives kept
// and in the same group.
TEST(SemanticDedup, LongListsMatchBruteForce) {
  const int d = 64, groups = 70, copies = 10;
  Planted p = plant(groups, copies, d, 5);
  const auto n = p.docs.size();
  std::mt19937 rng(9);
  for (auto& doc : p.docs) {
    doc.list = 0;  // one list of 700
    doc.keep_score = static_cast<double>(rng() % 5);
  }
  auto comm = cluster::make_serial_comm();
  SemanticStats stats;
  const auto verdicts = semantic_duplicates(*comm, p.docs, p.vectors.data(), d, {}, &stats);
  EXPECT_EQ(stats.pairs, static_cast<int64_t>(n * (n - 1) / 2));
  // Reference: keep order, then each member's best earlier cosine.
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (p.docs[a].keep_score != p.docs[b].keep_score)
      return p.docs[a].keep_score > p.docs[b].keep_score;
    return p.docs[a].row < p.docs[b].row;
  });
  std::vector<bool> removed(n, false);
  for (size_t j = 1; j < n; ++j) {
    double best = -2;
    for (size_t i = 0; i < j; ++i) {
      double dot = 0;
      for (int k = 0; k < d; ++k)
        dot += double(p.vectors[order[i] * d + k]) * p.vectors[order[j] * d + k];
      best = std::max(best, dot);
    }
    removed[order[j]] = best >= 0.95;
  }
  size_t expected = 0;
  for (bool r : removed) expected += r;
  EXPECT_EQ(expected, static_cast<size_t>(groups * (copies - 1)));
  ASSERT_EQ(verdicts.size(), expected);
  for (const SemanticVerdict& v : verdicts) {
    EXPECT_TRUE(removed[v.row]) << "row " << v.row;
    EXPECT_FALSE(removed[v.representative]) << "representative " << v.representative;
    EXPECT_EQ(p.group[v.row], p.group[v.representative]);
    EXPECT_GT(v.similarity, 0.99);
  }
}

TEST(SemanticDedup, OnlyInsideAList) {
  const int d = 64;
  Planted p = plant(1, 4, d, 5);
  for (size_t i = 0; i < p.docs.size(); ++i) p.docs[i].list = static_cast<int64_t>(i);  // apart
  auto comm = cluster::make_serial_comm();
  EXPECT_TRUE(semantic_duplicates(*comm, p.docs, p.vectors.data(), d, {}).empty());
  p.docs[3].list = 0;  // one copy joins the first
  const auto verdicts = semantic_duplicates(*comm, p.docs, p.vectors.data(), d, {});
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].row, 3u) << "equal keep scores: the smaller row is kept";
  EXPECT_EQ(verdicts[0].representative, 0u);
}

TEST(SemanticDedup, EpsDecidesAndChainsEndAtAKeptDocument) {
  // Three unit vectors in a plane: a, b at 0.98 from a, c at 0.98 from b but 0.92 from a.
  const int d = 2;
  auto at = [](double angle) { return std::vector<float>{float(std::cos(angle)), float(std::sin(angle))}; };
  const double step = std::acos(0.98);
  std::vector<float> vectors;
  for (int i = 0; i < 3; ++i) {
    auto v = at(i * step);
    vectors.insert(vectors.end(), v.begin(), v.end());
  }
  std::vector<SemanticDoc> docs = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
  auto comm = cluster::make_serial_comm();
  SemanticOptions options;
  options.eps = 0.01;  // 0.99: nothing
  options.report_eps = {0.01, 0.05, 0.1};
  SemanticStats stats;
  EXPECT_TRUE(semantic_duplicates(*comm, docs, vectors.data(), d, options, &stats).empty());
  EXPECT_EQ(stats.removed, (std::vector<int64_t>{0, 2, 2}));
  options.eps = 0.05;  // b and c go; c's most similar earlier member is b, removed too -> a
  const auto verdicts = semantic_duplicates(*comm, docs, vectors.data(), d, options);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[1].row, 2u);
  EXPECT_EQ(verdicts[1].representative, 0u);
  EXPECT_NEAR(verdicts[1].similarity, std::cos(2 * step), 1e-6);
}

TEST(SemanticDedup, BadListIsAnErrorForEveryRank) {
  std::vector<SemanticDoc> docs = {{0, -1, 0}};
  std::vector<float> v = {1.f};
  auto comm = cluster::make_serial_comm();
  EXPECT_THROW(semantic_duplicates(*comm, docs, v.data(), 1, {}), cluster::PhaseError);
}

// The kernel against a double-precision brute force: list sizes around and between the
// tile (256), each row's best earlier similarity within float rounding and its `nearest` row
// attaining it.
void expect_kernel_matches_brute_force(const std::vector<float>& rows, size_t n, int d) {
  std::vector<float> best(n);
  std::vector<int64_t> nearest(n);
  const int64_t pairs = nearest_earlier(rows.data(), n, d, best.data(), nearest.data());
  EXPECT_EQ(pairs, static_cast<int64_t>(n * (n > 0 ? n - 1 : 0) / 2)) << "n " << n;
  auto dot = [&](size_t a, size_t b) {
    double s = 0;
    for (int k = 0; k < d; ++k) s += double(rows[a * d + k]) * rows[b * d + k];
    return s;
  };
  for (size_t j = 0; j < n; ++j) {
    if (j == 0) {
      EXPECT_EQ(nearest[0], -1);
      EXPECT_TRUE(std::isinf(best[0]) && best[0] < 0);
      continue;
    }
    double want = -1e300;
    for (size_t i = 0; i < j; ++i) want = std::max(want, dot(i, j));
    ASSERT_GE(nearest[j], 0) << "n " << n << " row " << j;
    ASSERT_LT(static_cast<size_t>(nearest[j]), j) << "n " << n << " row " << j;
    EXPECT_NEAR(best[j], want, 1e-5) << "n " << n << " row " << j;
    EXPECT_NEAR(dot(static_cast<size_t>(nearest[j]), j), want, 1e-5) << "n " << n << " row " << j;
  }
}

TEST(SemanticKernel, MatchesBruteForceForSizesAroundTheTile) {
  const int d = 24;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{255}, size_t{256}, size_t{257},
                   size_t{600}, size_t{3 * kSemanticTile + 5}}) {
    std::vector<float> rows(n * d);
    for (size_t i = 0; i < n; ++i) {
      for (int k = 0; k < d; ++k) rows[i * d + k] = normal(rng);
      normalise(rows.data() + i * d, d);
    }
    expect_kernel_matches_brute_force(rows, n, d);
  }
}

TEST(SemanticKernel, AllIdenticalVectors) {
  const int d = 16;
  const size_t n = 2 * kSemanticTile + 3;  // pairs in earlier tiles (BLAS) and inside tiles
  std::vector<float> one(d);
  for (int k = 0; k < d; ++k) one[k] = float(k + 1);
  normalise(one.data(), d);
  std::vector<float> rows;
  for (size_t i = 0; i < n; ++i) rows.insert(rows.end(), one.begin(), one.end());
  expect_kernel_matches_brute_force(rows, n, d);
  // And as a list: every member but the first kept one is a duplicate of it.
  std::vector<SemanticDoc> docs;
  for (size_t i = 0; i < n; ++i) docs.push_back({i, 0, 0.0});
  auto comm = cluster::make_serial_comm();
  const auto verdicts = semantic_duplicates(*comm, docs, rows.data(), d, {});
  ASSERT_EQ(verdicts.size(), n - 1);
  for (const SemanticVerdict& v : verdicts) {
    EXPECT_EQ(v.representative, 0u) << "row " << v.row;
    EXPECT_NEAR(v.similarity, 1.0, 1e-5);
  }
}

// Rounds only bound the memory: a budget of a few records (so that many rounds run, and lists
// larger than the budget go alone) gives the same verdicts and counts, bit for bit.
TEST(SemanticDedup, RoundBudgetDoesNotChangeTheVerdicts) {
  const int d = 32;
  Planted p = plant(40, 7, d, 21);
  std::mt19937 rng(4);
  for (auto& doc : p.docs) {
    doc.list = static_cast<int64_t>(rng() % 9);  // 9 lists of ~31, mixed groups
    doc.keep_score = static_cast<double>(rng() % 3);
  }
  p.docs[5].list = 12;  // a gap: lists 9..11 empty
  auto comm = cluster::make_serial_comm();
  SemanticStats whole_stats;
  const auto whole = semantic_duplicates(*comm, p.docs, p.vectors.data(), d, {}, &whole_stats);
  ASSERT_FALSE(whole.empty());
  const size_t record = 32 + d * sizeof(float);
  for (size_t budget : {size_t{1}, 3 * record, 40 * record, 100 * record}) {
    SemanticOptions options;
    options.round_bytes = budget;
    SemanticStats stats;
    const auto got = semantic_duplicates(*comm, p.docs, p.vectors.data(), d, options, &stats);
    ASSERT_EQ(got.size(), whole.size()) << "budget " << budget;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].row, whole[i].row);
      EXPECT_EQ(got[i].representative, whole[i].representative);
      EXPECT_EQ(got[i].similarity, whole[i].similarity);
    }
    EXPECT_EQ(stats.removed, whole_stats.removed);
    EXPECT_EQ(stats.pairs, whole_stats.pairs);
    EXPECT_EQ(stats.lists, 10);
  }
}

TEST(SemanticDedup, EmptyInput) {
  auto comm = cluster::make_serial_comm();
  SemanticStats stats;
  EXPECT_TRUE(semantic_duplicates(*comm, {}, nullptr, 8, {}, &stats).empty());
  EXPECT_EQ(stats.lists, 0);
  EXPECT_EQ(stats.pairs, 0);
}

}  // namespace
}  // namespace sf::stages::dedup
