// exact_duplicates (stages/dedup/clusters.h): one shuffle of hash groups to the hash's owner
// and one of its decisions back.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "stages/dedup/clusters.h"
#include "stages/dedup/clusters/shuffle.h"

namespace sf::stages::dedup {

using namespace detail;  // shuffle.h: what the duplicate clusters share

namespace {

// ---- records of the shuffles ----------------------------------------------------------------

struct HashGroup {  // one rank's documents with one exact hash
  uint64_t lo, hi;
  uint64_t min_row;
  uint64_t best_row;
  double best_score;
  uint64_t count;
};
struct HashVerdict {  // the owner's decision for one hash
  uint64_t lo, hi;
  uint64_t cluster;
  uint64_t representative;
};

}  // namespace

std::vector<Verdict> exact_duplicates(Comm& comm, RowRange range,
                                      const std::vector<DocRef>& docs,
                                      const std::vector<Hash128>& hashes) {
  const int ranks = comm.size();
  cluster::run_local_phase(comm, "dedup: exact duplicates input", [&] {
    check_docs(range, docs);
    if (hashes.size() != docs.size())
      throw std::invalid_argument("exact dedup: " + std::to_string(hashes.size()) +
                                  " hashes for " + std::to_string(docs.size()) + " documents");
  });
  const RowOwners owners(comm, range);  // checks the ranges on all ranks

  // This rank's documents grouped by hash; one HashGroup per hash to its owner.
  std::vector<size_t> order(docs.size());
  std::vector<std::vector<HashGroup>> outgoing(ranks);
  auto by_hash = [&](size_t a, size_t b) {
    return hashes[a].lo != hashes[b].lo ? hashes[a].lo < hashes[b].lo
                                        : hashes[a].hi < hashes[b].hi ||
                                              (hashes[a].hi == hashes[b].hi && a < b);
  };
  auto same_hash = [&](size_t a, size_t b) {
    return hashes[a].lo == hashes[b].lo && hashes[a].hi == hashes[b].hi;
  };
  cluster::run_local_phase(comm, "dedup: exact duplicates group", [&] {
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), by_hash);
    for (size_t g = 0; g < order.size();) {
      const size_t first = order[g];
      HashGroup group{hashes[first].lo, hashes[first].hi, docs[first].row, docs[first].row,
                      docs[first].keep_score, 1};
      size_t e = g + 1;
      for (; e < order.size() && same_hash(order[e], first); ++e) {
        const DocRef& d = docs[order[e]];
        ++group.count;
        group.min_row = std::min(group.min_row, d.row);
        if (keeps_over(d.keep_score, d.row, group.best_score, group.best_row)) {
          group.best_row = d.row;
          group.best_score = d.keep_score;
        }
      }
      outgoing[key_owner(group.lo ^ mix64(group.hi), ranks)].push_back(group);
      g = e;
    }
  });
  std::vector<std::vector<HashGroup>> received = exchange(comm, outgoing);

  // Owner: one decision per hash held by >= 2 documents, sent to every contributing rank.
  std::vector<std::vector<HashVerdict>> decisions(ranks);
  cluster::run_local_phase(comm, "dedup: exact duplicates decide", [&] {
    struct Entry {
      HashGroup group;
      int source;
    };
    std::vector<Entry> entries;
    for (int s = 0; s < ranks; ++s)
      for (const HashGroup& g : received[s]) entries.push_back({g, s});
    received.clear();
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.group.lo != b.group.lo ? a.group.lo < b.group.lo : a.group.hi < b.group.hi;
    });
    for (size_t g = 0; g < entries.size();) {
      size_t e = g + 1;
      while (e < entries.size() && entries[e].group.lo == entries[g].group.lo &&
             entries[e].group.hi == entries[g].group.hi)
        ++e;
      HashGroup total = entries[g].group;
      for (size_t k = g + 1; k < e; ++k) {
        const HashGroup& part = entries[k].group;
        total.count += part.count;
        total.min_row = std::min(total.min_row, part.min_row);
        if (keeps_over(part.best_score, part.best_row, total.best_score, total.best_row)) {
          total.best_row = part.best_row;
          total.best_score = part.best_score;
        }
      }
      if (total.count >= 2)
        for (size_t k = g; k < e; ++k)
        decisions[entries[k].source].push_back(
            {total.lo, total.hi, total.min_row, total.best_row});
      g = e;
    }
  });
  std::vector<std::vector<HashVerdict>> answers = exchange(comm, decisions);

  std::vector<Verdict> verdicts;
  cluster::run_local_phase(comm, "dedup: exact duplicates verdicts", [&] {
    std::vector<HashVerdict> all;
    for (auto& a : answers) all.insert(all.end(), a.begin(), a.end());
    answers.clear();
    std::sort(all.begin(), all.end(), [](const HashVerdict& a, const HashVerdict& b) {
      return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi;
    });
    for (size_t i = 0; i < docs.size(); ++i) {
      const auto it = std::lower_bound(
          all.begin(), all.end(), hashes[i], [](const HashVerdict& v, const Hash128& h) {
            return v.lo != h.lo ? v.lo < h.lo : v.hi < h.hi;
          });
      if (it == all.end() || it->lo != hashes[i].lo || it->hi != hashes[i].hi) continue;
      if (it->representative != docs[i].row)
        verdicts.push_back({docs[i].row, it->cluster, it->representative, 1.0});
    }
  });
  return verdicts;
}

}  // namespace sf::stages::dedup
