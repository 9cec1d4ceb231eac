#include "stages/dedup/final_clusters.h"

#include <map>
#include <set>
#include <utility>

namespace sf::stages::dedup {

namespace {

// What the rank holding an exact duplicate's representative says of that row (final
// clusters): kept alone, a near duplicate (removed into `cluster`), or the representative of
// near cluster `cluster`.
struct RepresentativeFate {
  enum class Kind : uint8_t { kKept, kNearDuplicate, kNearRepresentative };
  Kind kind = Kind::kKept;
  uint64_t cluster = 0, representative = 0;  // kNearDuplicate; cluster also kNearRepresentative
  double similarity = 0;                     // kNearDuplicate

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & kind & cluster & representative & similarity;
  }
};

// Plain records of the final-clusters shuffles (cluster::exchange sends them raw).
struct RepresentativeLabel {
  uint64_t representative, cluster;
};
struct ClusterCount {
  uint64_t cluster;
  int64_t removed;
};

}  // namespace

int owner_of(const std::vector<int64_t>& begins, uint64_t row) {
  const auto it = std::upper_bound(begins.begin(), begins.end(), static_cast<int64_t>(row));
  return static_cast<int>(it - begins.begin()) - 1;
}

FinalClusters final_clusters(cluster::Comm& comm, const std::vector<int64_t>& begins,
                             const std::vector<Verdict>& exact, const std::vector<Verdict>& near) {
  FinalClusters out;
  // Near clusters' representatives learn their cluster label (they have no verdict).
  std::vector<std::vector<RepresentativeLabel>> labels(static_cast<size_t>(comm.size()));
  std::set<std::pair<uint64_t, uint64_t>> reps;
  for (const auto& v : near) reps.insert({v.representative, v.cluster});
  for (const auto& [rep, label] : reps)
    labels[static_cast<size_t>(owner_of(begins, rep))].push_back({rep, label});
  std::unordered_map<uint64_t, uint64_t> represents;
  for (const auto& from : cluster::exchange(comm, labels))
    for (const RepresentativeLabel& l : from) represents[l.representative] = l.cluster;
  std::unordered_map<uint64_t, const Verdict*> near_of;
  for (const auto& v : near) near_of[v.row] = &v;
  std::vector<uint64_t> wanted;
  for (const auto& v : exact) wanted.push_back(v.representative);
  using Fate = RepresentativeFate;
  const auto fate = fetch_by_row(comm, begins, wanted, [&](uint64_t row) {
    if (auto it = near_of.find(row); it != near_of.end())
      return Fate{Fate::Kind::kNearDuplicate, it->second->cluster, it->second->representative,
                  it->second->similarity};
    if (auto r = represents.find(row); r != represents.end())
      return Fate{Fate::Kind::kNearRepresentative, r->second, 0, 0};
    return Fate{};
  });
  for (const auto& v : exact) {
    const Fate& f = fate.at(v.representative);
    switch (f.kind) {
      case Fate::Kind::kNearDuplicate:
        out.verdicts.push_back({v.row, f.cluster, f.representative, true, f.similarity});
        break;
      case Fate::Kind::kNearRepresentative:
        out.verdicts.push_back({v.row, f.cluster, v.representative, false, 1.0});
        break;
      case Fate::Kind::kKept:
        out.verdicts.push_back({v.row, v.cluster, v.representative, false, 1.0});
        break;
    }
  }
  for (const auto& v : near)
    out.verdicts.push_back({v.row, v.cluster, v.representative, true, v.similarity});
  std::sort(out.verdicts.begin(), out.verdicts.end(),
            [](const FinalVerdict& a, const FinalVerdict& b) { return a.row < b.row; });

  // Cluster sizes: removed members counted by the rank owning the label's hash.
  std::map<uint64_t, int64_t> local_counts;
  for (const auto& v : out.verdicts) ++local_counts[v.cluster];
  std::vector<std::vector<ClusterCount>> counts(static_cast<size_t>(comm.size()));
  for (const auto& [label, n] : local_counts)
    counts[static_cast<size_t>(label % static_cast<uint64_t>(comm.size()))].push_back({label, n});
  std::unordered_map<uint64_t, int64_t> sizes;
  for (const auto& from : cluster::exchange(comm, counts))
    for (const ClusterCount& c : from) sizes[c.cluster] += c.removed;
  int64_t largest = 0;
  for (const auto& [label, n] : sizes) largest = std::max(largest, n + 1);
  out.clusters = comm.sum(static_cast<int64_t>(sizes.size()));
  out.largest_cluster = static_cast<int64_t>(comm.max(static_cast<double>(largest)));
  return out;
}

}  // namespace sf::stages::dedup
