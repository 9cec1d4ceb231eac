// stages/dedup/quality.h: the quality figures of a dedup outcome against exact Jaccard.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <tuple>

#include "stages/dedup/quality.h"

namespace sf::stages::dedup {
namespace {

std::vector<uint64_t> range_set(uint64_t from, uint64_t to, std::vector<uint64_t> extra = {}) {
  std::vector<uint64_t> s(to - from + 1);
  std::iota(s.begin(), s.end(), from);
  s.insert(s.end(), extra.begin(), extra.end());
  std::sort(s.begin(), s.end());
  return s;
}

// Eight documents, threshold 0.8. Jaccard by hand:
//   0 = {1..10}, 1 = {1..9, 11}, 2 = {1..8, 11, 12}, 3 = {1..10} (exact copy of 0),
//   4 = {100..104}, 5 = {100..103, 105}, 6 = {}, 7 = {}.
//   J(0,1) = 9/11, J(1,2) = 9/11, J(0,2) = 8/12, J(0,3) = 1, J(1,3) = 9/11, J(2,3) = 8/12,
//   J(4,5) = 4/6, J(6,7) = 1 (two empty sets). True pairs: (0,1) (1,2) (0,3) (1,3) (6,7).
// The run: cluster {0,1,2,3} kept 0 (1, 2 near, 3 exact), cluster {4,5} kept 4, 6 and 7 kept
// apart; verified pairs 3-0 (exact), 1-0, 2-1, 5-4 (near), 0-1 listed twice.
struct HandCase {
  std::vector<std::vector<uint64_t>> sets = {range_set(1, 10),
                                             range_set(1, 9, {11}),
                                             range_set(1, 8, {11, 12}),
                                             range_set(1, 10),
                                             range_set(100, 104),
                                             range_set(100, 103, {105}),
                                             {},
                                             {}};
  DedupOutcome outcome{{0, 0, 0, 0, 4, 4, 6, 7},
                       {-1, 0, 0, 0, -1, 4, -1, -1},
                       {{3, 0, false}, {1, 0, true}, {2, 1, true}, {5, 4, true}, {0, 1, true}}};
};

TEST(DedupQuality, ExactJaccardByHand) {
  const HandCase c;
  EXPECT_DOUBLE_EQ(exact_jaccard(c.sets[0], c.sets[1]), 9.0 / 11);
  EXPECT_DOUBLE_EQ(exact_jaccard(c.sets[0], c.sets[2]), 8.0 / 12);
  EXPECT_DOUBLE_EQ(exact_jaccard(c.sets[4], c.sets[5]), 4.0 / 6);
  EXPECT_DOUBLE_EQ(exact_jaccard(c.sets[6], c.sets[7]), 1.0);
  EXPECT_DOUBLE_EQ(exact_jaccard(c.sets[0], c.sets[6]), 0.0);
}

TEST(DedupQuality, FiguresOfAHandComputedCorpus) {
  const HandCase c;
  std::vector<std::tuple<int64_t, int64_t, bool, bool>> reported;
  const DedupQuality q = measure_dedup_quality(
      c.sets, c.outcome, 0.8, 0.9, [&](int64_t a, int64_t b, double, bool same, bool claimed) {
        reported.emplace_back(a, b, same, claimed);
      });
  EXPECT_EQ(q.docs, 8);
  EXPECT_EQ(q.true_pairs, 5);
  // Pair precision: 4 distinct verified pairs, 3 true (4-5 is at 4/6).
  EXPECT_EQ(q.claimed_pairs, 4);
  EXPECT_EQ(q.claimed_true, 3);
  EXPECT_EQ(q.claimed_near, 3);
  EXPECT_EQ(q.claimed_near_true, 2);
  EXPECT_EQ(q.claimed_exact, 1);
  EXPECT_EQ(q.claimed_exact_true, 1);
  EXPECT_DOUBLE_EQ(q.precision(), 0.75);
  // 4/6 is 0.133 below 0.8: the third 0.05 bin below the threshold.
  EXPECT_EQ(q.false_claims_by_jaccard, (std::vector<int64_t>{0, 0, 1, 0, 0}));
  // Pair recall: all true pairs but 6-7 share a cluster.
  EXPECT_EQ(q.true_pairs_same_cluster, 4);
  EXPECT_DOUBLE_EQ(q.recall(), 0.8);
  EXPECT_DOUBLE_EQ(q.f1(), 2 * 0.75 * 0.8 / (0.75 + 0.8));
  EXPECT_EQ(q.missed_by_jaccard, (std::vector<int64_t>{0, 0, 0, 0, 1}));
  // Transitive: C(4,2) + C(2,2) = 7 pairs in one cluster, 4 true.
  EXPECT_EQ(q.same_cluster_pairs, 7);
  EXPECT_DOUBLE_EQ(q.transitive_precision(), 4.0 / 7);
  // Removed 1, 2, 3, 5; to their representative: 1 (9/11) and 3 (1) reach 0.8, 2 and 5 not.
  EXPECT_EQ(q.removed, 4);
  EXPECT_EQ(q.removed_true_to_representative, 2);
  // To some kept doc (0, 4, 6, 7): 1 and 3 (to 0); 2's only true partner (1) was removed.
  EXPECT_EQ(q.removed_true_to_kept, 2);
  EXPECT_DOUBLE_EQ(q.document_precision(), 0.5);
  // Documents with a true duplicate: 0 1 2 3 6 7; resolved: 1 2 3 (removed), 0 (no kept
  // partner left); 6 and 7 are both kept.
  EXPECT_EQ(q.docs_with_true_duplicate, 6);
  EXPECT_EQ(q.docs_resolved, 4);
  EXPECT_EQ(q.residual_pairs, 1);
  // Reported: J >= 0.9, same cluster or verified: the 6 pairs within {0..3}, 4-5, 6-7.
  std::sort(reported.begin(), reported.end());
  const std::vector<std::tuple<int64_t, int64_t, bool, bool>> want = {
      {0, 1, true, true},  {0, 2, true, false}, {0, 3, true, true}, {1, 2, true, true},
      {1, 3, true, false}, {2, 3, true, false}, {4, 5, true, true}, {6, 7, false, false}};
  EXPECT_EQ(reported, want);
}

TEST(DedupQuality, VerifiedPairSharingNoShingleIsAFalseClaim) {
  const std::vector<std::vector<uint64_t>> sets = {{1, 2, 3}, {4, 5, 6}};
  const DedupOutcome outcome{{0, 0}, {-1, 0}, {{1, 0, true}}};
  std::vector<std::pair<int64_t, int64_t>> reported;
  const DedupQuality q = measure_dedup_quality(
      sets, outcome, 0.8, 1.1, [&](int64_t a, int64_t b, double j, bool same, bool claimed) {
        EXPECT_EQ(j, 0.0);
        EXPECT_TRUE(same && claimed);
        reported.emplace_back(a, b);
      });
  EXPECT_EQ(q.true_pairs, 0);
  EXPECT_EQ(q.claimed_pairs, 1);
  EXPECT_DOUBLE_EQ(q.precision(), 0.0);
  EXPECT_DOUBLE_EQ(q.recall(), 1.0);  // no true pair to find
  EXPECT_EQ(q.false_claims_by_jaccard[4], 1);
  EXPECT_EQ(reported, (std::vector<std::pair<int64_t, int64_t>>{{0, 1}}));
}

// A random corpus against a brute-force count over all n^2 pairs written here.
TEST(DedupQuality, MatchesBruteForceOnRandomSets) {
  std::mt19937_64 rng(7);
  const int n = 80;
  std::vector<std::vector<uint64_t>> sets(n);
  for (int i = 0; i < n; ++i) {
    if (i > 0 && rng() % 3 == 0) {  // a perturbed copy of an earlier set
      const auto& from = sets[rng() % i];
      std::set<uint64_t> s(from.begin(), from.end());
      if (!s.empty() && rng() % 2) s.erase(s.begin());
      s.insert(rng() % 40);
      sets[i].assign(s.begin(), s.end());
    } else if (rng() % 10 != 0) {
      std::set<uint64_t> s;
      for (int k = 0, m = 3 + static_cast<int>(rng() % 8); k < m; ++k) s.insert(rng() % 40);
      sets[i].assign(s.begin(), s.end());
    }  // else empty
  }
  DedupOutcome outcome;
  outcome.cluster.resize(n);
  outcome.representative.assign(n, -1);
  for (int i = 0; i < n; ++i) {
    outcome.cluster[i] = static_cast<int64_t>(rng() % 30);
    if (rng() % 2) outcome.representative[i] = static_cast<int64_t>(rng() % n);
    if (outcome.representative[i] == i) outcome.representative[i] = -1;
  }
  for (int k = 0; k < 60; ++k) {
    const auto a = static_cast<int64_t>(rng() % n), b = static_cast<int64_t>(rng() % n);
    if (a != b) outcome.pairs.push_back({a, b, rng() % 2 == 0});
  }
  const double t = 0.5;
  const DedupQuality q = measure_dedup_quality(sets, outcome, t);

  auto jac = [&](int a, int b) {
    std::set<uint64_t> u(sets[a].begin(), sets[a].end()), x;
    u.insert(sets[b].begin(), sets[b].end());
    for (uint64_t v : sets[a])
      if (std::binary_search(sets[b].begin(), sets[b].end(), v)) x.insert(v);
    return u.empty() ? 1.0 : static_cast<double>(x.size()) / static_cast<double>(u.size());
  };
  int64_t true_pairs = 0, found = 0, same_pairs = 0, residual = 0;
  std::vector<char> has_true(n, 0), kept_partner(n, 0), for_kept(n, 0);
  auto removed = [&](int i) { return outcome.representative[i] >= 0; };
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) {
      const bool same = outcome.cluster[a] == outcome.cluster[b];
      same_pairs += same;
      if (jac(a, b) < t) continue;
      ++true_pairs;
      found += same;
      has_true[a] = has_true[b] = 1;
      if (!removed(a) && !removed(b)) ++residual, kept_partner[a] = kept_partner[b] = 1;
      if (removed(a) && !removed(b)) for_kept[a] = 1;
      if (removed(b) && !removed(a)) for_kept[b] = 1;
    }
  std::set<std::pair<int64_t, int64_t>> claimed;
  int64_t claimed_true = 0;
  for (const auto& p : outcome.pairs)
    if (claimed.insert({std::min(p.a, p.b), std::max(p.a, p.b)}).second)
      claimed_true += jac(static_cast<int>(p.a), static_cast<int>(p.b)) >= t;
  int64_t removed_n = 0, to_rep = 0, to_kept = 0, with_true = 0, resolved = 0;
  for (int i = 0; i < n; ++i) {
    if (removed(i)) {
      ++removed_n;
      to_rep += jac(i, static_cast<int>(outcome.representative[i])) >= t;
      to_kept += for_kept[i];
    }
    if (has_true[i]) ++with_true, resolved += removed(i) || !kept_partner[i];
  }
  ASSERT_GT(true_pairs, 10);  // the corpus is not trivial
  EXPECT_EQ(q.true_pairs, true_pairs);
  EXPECT_EQ(q.true_pairs_same_cluster, found);
  EXPECT_EQ(q.same_cluster_pairs, same_pairs);
  EXPECT_EQ(q.claimed_pairs, static_cast<int64_t>(claimed.size()));
  EXPECT_EQ(q.claimed_true, claimed_true);
  EXPECT_EQ(q.removed, removed_n);
  EXPECT_EQ(q.removed_true_to_representative, to_rep);
  EXPECT_EQ(q.removed_true_to_kept, to_kept);
  EXPECT_EQ(q.docs_with_true_duplicate, with_true);
  EXPECT_EQ(q.docs_resolved, resolved);
  EXPECT_EQ(q.residual_pairs, residual);
}

TEST(DedupQuality, RejectsBadInput) {
  const std::vector<std::vector<uint64_t>> sets = {{1, 2}, {2, 1}};
  const DedupOutcome outcome{{0, 1}, {-1, -1}, {}};
  EXPECT_THROW(measure_dedup_quality(sets, outcome, 0.8), std::invalid_argument);
  const std::vector<std::vector<uint64_t>> good = {{1, 2}, {1, 2}};
  EXPECT_THROW(measure_dedup_quality(good, DedupOutcome{{0}, {-1}, {}}, 0.8),
               std::invalid_argument);
  EXPECT_THROW(measure_dedup_quality(good, DedupOutcome{{0, 0}, {-1, 5}, {}}, 0.8),
               std::invalid_argument);
  EXPECT_THROW(measure_dedup_quality(good, DedupOutcome{{0, 0}, {-1, 0}, {{1, 1, true}}}, 0.8),
               std::invalid_argument);
}

}  // namespace
}  // namespace sf::stages::dedup
