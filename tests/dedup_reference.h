// Brute-force references for stages/dedup/clusters.h, computed on one process straight from
// the definitions (band buckets keyed by the band's values themselves, a union-find over all
// rows), and synthetic corpora of signatures with planted near-duplicate families, chains
// and hot buckets. Used by the unit and the MPI tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "stages/dedup/clusters.h"

namespace sf::testing {

using stages::dedup::DocRef;
using stages::dedup::Hash128;
using stages::dedup::LshParams;
using stages::dedup::NearPair;
using stages::dedup::NearStats;
using stages::dedup::Verdict;

// A corpus as the clustering sees it, all rows 0..n-1 on one process.
struct SignatureCorpus {
  std::vector<DocRef> docs;
  std::vector<uint32_t> signatures;  // docs x width
  std::vector<std::vector<uint64_t>> shingles;
};

inline bool verdicts_equal(const Verdict& a, const Verdict& b) {
  return a.row == b.row && a.cluster == b.cluster && a.representative == b.representative &&
         a.similarity == b.similarity;
}

inline bool ref_keeps_over(const DocRef& a, const DocRef& b) {
  return a.keep_score > b.keep_score || (a.keep_score == b.keep_score && a.row < b.row);
}

// Groups rows into clusters given edges; returns (cluster smallest row, representative) per
// row for rows in clusters of >= 2, plus verdicts. sim(row, rep) gives the similarity.
template <class Similarity>
std::vector<Verdict> reference_verdicts(const std::vector<DocRef>& docs,
                                        const std::vector<std::pair<uint64_t, uint64_t>>& edges,
                                        Similarity sim, int64_t* clusters,
                                        int64_t* largest_cluster) {
  const size_t n = docs.size();
  std::vector<size_t> parent(n);
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto find = [&](size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto& [a, b] : edges) {
    const size_t ra = find(a), rb = find(b);
    if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
  }
  std::map<size_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < n; ++i) groups[find(i)].push_back(i);
  std::vector<Verdict> out;
  int64_t count = 0, largest = 0;
  for (const auto& [root, members] : groups) {
    if (members.size() < 2) continue;
    ++count;
    largest = std::max<int64_t>(largest, static_cast<int64_t>(members.size()));
    size_t rep = members[0];
    for (size_t m : members)
      if (ref_keeps_over(docs[m], docs[rep])) rep = m;
    for (size_t m : members)
      if (m != rep) out.push_back({docs[m].row, docs[members[0]].row, docs[rep].row, sim(m, rep)});
  }
  std::sort(out.begin(), out.end(),
            [](const Verdict& a, const Verdict& b) { return a.row < b.row; });
  if (clusters) *clusters = count;
  if (largest_cluster) *largest_cluster = largest;
  return out;
}

// Exact duplicates by hash (docs sorted by row).
inline std::vector<Verdict> reference_exact(const std::vector<DocRef>& docs,
                                            const std::vector<Hash128>& hashes) {
  std::map<std::pair<uint64_t, uint64_t>, std::vector<size_t>> by_hash;
  for (size_t i = 0; i < docs.size(); ++i) by_hash[{hashes[i].lo, hashes[i].hi}].push_back(i);
  std::vector<std::pair<uint64_t, uint64_t>> edges;
  for (const auto& [h, members] : by_hash)
    for (size_t m : members) edges.emplace_back(members[0], m);
  return reference_verdicts(docs, edges, [](size_t, size_t) { return 1.0; }, nullptr, nullptr);
}

inline double reference_jaccard(const SignatureCorpus& c, int width, size_t a, size_t b) {
  if (!c.shingles.empty()) {
    const auto& x = c.shingles[a];
    const auto& y = c.shingles[b];
    if (x.empty() && y.empty()) return 1.0;
    std::set<uint64_t> u(x.begin(), x.end());
    size_t common = 0;
    for (uint64_t v : y) common += u.count(v);
    return static_cast<double>(common) / static_cast<double>(x.size() + y.size() - common);
  }
  int equal = 0;
  for (int k = 0; k < width; ++k)
    equal += c.signatures[a * width + k] == c.signatures[b * width + k];
  return static_cast<double>(equal) / width;
}

// Near duplicates by definition: each band bucket (same band values) joins its members to its
// smallest row; pairs with Jaccard >= threshold are edges. Docs sorted by row (gaps allowed).
// `verified` (optional): the edges as near_duplicates reports them, sorted by (row, other).
inline std::vector<Verdict> reference_near(const SignatureCorpus& c, const LshParams& p,
                                           NearStats* expected,
                                           std::vector<NearPair>* verified = nullptr) {
  const int width = p.width();
  std::set<std::pair<uint64_t, uint64_t>> candidates;
  int64_t buckets = 0, largest_bucket = 0;
  for (int b = 0; b < p.bands; ++b) {
    std::map<std::vector<uint32_t>, std::vector<size_t>> bucket;
    for (size_t i = 0; i < c.docs.size(); ++i) {
      const uint32_t* v = &c.signatures[i * width + static_cast<size_t>(b) * p.rows];
      bucket[std::vector<uint32_t>(v, v + p.rows)].push_back(i);
    }
    for (const auto& [key, members] : bucket) {
      if (members.size() < 2) continue;
      ++buckets;
      largest_bucket = std::max<int64_t>(largest_bucket, static_cast<int64_t>(members.size()));
      for (size_t k = 1; k < members.size(); ++k) candidates.insert({members[k], members[0]});
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> edges;
  for (const auto& [a, b] : candidates)
    if (reference_jaccard(c, width, a, b) >= p.threshold) edges.emplace_back(a, b);
  if (verified) {
    verified->clear();
    for (const auto& [a, b] : edges)
      verified->push_back({c.docs[a].row, c.docs[b].row, reference_jaccard(c, width, a, b)});
  }
  NearStats s;
  s.buckets = buckets;
  s.largest_bucket = largest_bucket;
  s.candidate_pairs = static_cast<int64_t>(candidates.size());
  s.verified_edges = static_cast<int64_t>(edges.size());
  auto out = reference_verdicts(
      c.docs, edges, [&](size_t a, size_t b) { return reference_jaccard(c, width, a, b); },
      &s.clusters, &s.largest_cluster);
  if (expected) *expected = s;
  return out;
}

// n docs of `width` random values; families of near duplicates (each value copied from the
// family's template with probability `keep`), a chain through shuffled rows where neighbours
// share one band, and keep scores from a few levels (ties on purpose).
inline SignatureCorpus planted_corpus(size_t n, const LshParams& p, uint64_t seed,
                                      bool with_shingles) {
  const int width = p.width();
  std::mt19937_64 rng(seed);
  SignatureCorpus c;
  c.docs.resize(n);
  c.signatures.resize(n * width);
  for (size_t i = 0; i < n; ++i) {
    c.docs[i] = {i, static_cast<double>(rng() % 4)};
    for (int k = 0; k < width; ++k) c.signatures[i * width + k] = static_cast<uint32_t>(rng());
  }
  // Families: a quarter of the docs, groups of 2..6 around a template (the first member).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  size_t at = 0;
  while (at + 6 < n / 4) {
    const size_t size = 2 + rng() % 5;
    const size_t head = order[at];
    for (size_t m = 1; m < size; ++m) {
      const size_t member = order[at + m];
      for (int k = 0; k < width; ++k)
        if (rng() % 100 < 85) c.signatures[member * width + k] = c.signatures[head * width + k];
    }
    at += size;
  }
  // A chain: consecutive docs (in a shuffled order) share band (k % 2), half the values.
  const size_t chain = std::min<size_t>(n / 8, 400);
  for (size_t k = 0; k + 1 < chain; ++k) {
    const size_t a = order[n / 4 + k], b = order[n / 4 + k + 1];
    const int band = static_cast<int>(k % 2);
    for (int r = 0; r < p.rows; ++r)
      c.signatures[b * width + band * p.rows + r] = c.signatures[a * width + band * p.rows + r];
  }
  if (with_shingles) {  // shingle sets: the signature values themselves, as a set
    c.shingles.resize(n);
    for (size_t i = 0; i < n; ++i) {
      auto& s = c.shingles[i];
      s.assign(c.signatures.begin() + i * width, c.signatures.begin() + (i + 1) * width);
      std::sort(s.begin(), s.end());
      s.erase(std::unique(s.begin(), s.end()), s.end());
    }
  }
  return c;
}

}  // namespace sf::testing
