#include "stages/dedup/quality.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace sf::stages::dedup {
namespace {

double ratio(int64_t num, int64_t den) {
  return den ? static_cast<double>(num) / static_cast<double>(den) : 1.0;
}

uint64_t pair_key(int64_t a, int64_t b) {
  if (a > b) std::swap(a, b);
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

}  // namespace

double DedupQuality::precision() const { return ratio(claimed_true, claimed_pairs); }
double DedupQuality::recall() const { return ratio(true_pairs_same_cluster, true_pairs); }
double DedupQuality::f1() const {
  const double p = precision(), r = recall();
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}
double DedupQuality::transitive_precision() const {
  return ratio(true_pairs_same_cluster, same_cluster_pairs);
}
double DedupQuality::representative_precision() const {
  return ratio(removed_true_to_representative, removed);
}
double DedupQuality::document_precision() const { return ratio(removed_true_to_kept, removed); }
double DedupQuality::document_recall() const {
  return ratio(docs_resolved, docs_with_true_duplicate);
}

double exact_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j])
      ++i;
    else if (b[j] < a[i])
      ++j;
    else
      ++inter, ++i, ++j;
  }
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

DedupQuality measure_dedup_quality(const std::vector<std::vector<uint64_t>>& sets,
                                   const DedupOutcome& outcome, double threshold,
                                   double report_from, const QualityPairFn& report) {
  const auto n = static_cast<int64_t>(sets.size());
  if (n >= (int64_t{1} << 31))
    throw std::invalid_argument("dedup quality: too many documents for all pairs");
  if (outcome.cluster.size() != sets.size() || outcome.representative.size() != sets.size())
    throw std::invalid_argument(
        "dedup quality: cluster and representative need one entry per "
        "document");
  for (const auto& s : sets)
    for (size_t k = 1; k < s.size(); ++k)
      if (s[k - 1] >= s[k])
        throw std::invalid_argument("dedup quality: a shingle set is not sorted and unique");
  auto check_index = [&](int64_t i, const char* what) {
    if (i < 0 || i >= n)
      throw std::invalid_argument(std::string("dedup quality: ") + what + " " + std::to_string(i) +
                                  " is not a document index");
  };
  DedupQuality q;
  q.docs = n;
  std::vector<char> removed(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t rep = outcome.representative[i];
    if (rep < 0) continue;
    check_index(rep, "representative");
    removed[i] = 1;
    ++q.removed;
    q.removed_true_to_representative += exact_jaccard(sets[i], sets[rep]) >= threshold;
  }
  {
    std::unordered_map<int64_t, int64_t> sizes;
    for (int64_t c : outcome.cluster) ++sizes[c];
    for (const auto& [c, k] : sizes) q.same_cluster_pairs += k * (k - 1) / 2;
  }

  // Claimed pairs: distinct, each with its exact Jaccard.
  std::unordered_set<uint64_t> claimed;
  for (const ClaimedPair& p : outcome.pairs) {
    check_index(p.a, "pair end");
    check_index(p.b, "pair end");
    if (p.a == p.b) throw std::invalid_argument("dedup quality: a pair joins a document to itself");
    if (!claimed.insert(pair_key(p.a, p.b)).second) continue;
    const double j = exact_jaccard(sets[p.a], sets[p.b]);
    const bool good = j >= threshold;
    ++q.claimed_pairs;
    q.claimed_true += good;
    (p.near ? q.claimed_near : q.claimed_exact)++;
    (p.near ? q.claimed_near_true : q.claimed_exact_true) += good;
    if (!good) {
      const int bin = static_cast<int>((threshold - j) / 0.05);
      ++q.false_claims_by_jaccard[static_cast<size_t>(std::clamp(bin, 0, 4))];
    }
  }

  // Every pair sharing a shingle (an inverted index), and every pair of empty sets.
  std::vector<char> has_true(static_cast<size_t>(n), 0), kept_partner(static_cast<size_t>(n), 0),
      removed_for_kept(static_cast<size_t>(n), 0);
  std::unordered_set<uint64_t> claimed_seen;
  auto visit = [&](int64_t a, int64_t b, double j) {
    const bool same = outcome.cluster[a] == outcome.cluster[b];
    const bool is_claimed = claimed.count(pair_key(a, b)) != 0;
    if (is_claimed) claimed_seen.insert(pair_key(a, b));
    if (j >= threshold) {
      ++q.true_pairs;
      has_true[a] = has_true[b] = 1;
      if (same) {
        ++q.true_pairs_same_cluster;
      } else {
        const int bin =
            j >= 1.0 ? 4 : std::min(3, static_cast<int>((j - threshold) / ((1 - threshold) / 4)));
        ++q.missed_by_jaccard[static_cast<size_t>(std::max(0, bin))];
      }
      if (!removed[a] && !removed[b]) {
        ++q.residual_pairs;
        kept_partner[a] = kept_partner[b] = 1;
      }
      if (removed[a] && !removed[b]) removed_for_kept[a] = 1;
      if (removed[b] && !removed[a]) removed_for_kept[b] = 1;
    }
    if (report && (j >= report_from || same || is_claimed)) report(a, b, j, same, is_claimed);
  };
  std::unordered_map<uint64_t, std::vector<int32_t>> postings;
  std::vector<int32_t> shared(static_cast<size_t>(n), 0), touched;
  std::vector<int64_t> empties;
  for (int64_t i = 0; i < n; ++i) {
    if (sets[i].empty()) {
      for (int64_t e : empties) visit(e, i, 1.0);
      empties.push_back(i);
      continue;
    }
    touched.clear();
    for (uint64_t s : sets[i]) {
      auto& list = postings[s];
      for (int32_t j : list)
        if (shared[j]++ == 0) touched.push_back(j);
      list.push_back(static_cast<int32_t>(i));
    }
    std::sort(touched.begin(), touched.end());
    for (int32_t j : touched) {
      const double inter = shared[j];
      visit(j, i, inter / (static_cast<double>(sets[i].size() + sets[j].size()) - inter));
      shared[j] = 0;
    }
  }
  if (report) {  // claimed pairs sharing no shingle, in key order
    std::vector<uint64_t> unseen;
    for (uint64_t key : claimed)
      if (!claimed_seen.count(key)) unseen.push_back(key);
    std::sort(unseen.begin(), unseen.end());
    for (uint64_t key : unseen) {
      const auto a = static_cast<int64_t>(key >> 32), b = static_cast<int64_t>(key & 0xffffffffu);
      report(a, b, 0.0, outcome.cluster[a] == outcome.cluster[b], true);
    }
  }

  for (int64_t i = 0; i < n; ++i) {
    q.removed_true_to_kept += removed_for_kept[i];
    if (!has_true[i]) continue;
    ++q.docs_with_true_duplicate;
    q.docs_resolved += removed[i] || !kept_partner[i];
  }
  return q;
}

}  // namespace sf::stages::dedup
