#include "stages/partition/placement.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace sf::stages {
namespace {

constexpr int kRefinePasses = 8;  // co-location's passes of single-list moves

}  // namespace

double shards_per_query(const ProbedLists& probed, const std::vector<std::vector<int>>& placement) {
  double sum = 0, total = 0;
  std::vector<int> touched;
  for (int64_t q = 0; q < probed.queries(); ++q) {
    touched.clear();
    for (int t = 0; t < probed.nprobe; ++t) {
      const int64_t list = probed.lists[q * probed.nprobe + t];
      if (list < 0) continue;
      const std::vector<int>& copies = placement.at(list);
      const int shard = copies.at(static_cast<size_t>(q) % copies.size());  // as search routes
      if (std::find(touched.begin(), touched.end(), shard) == touched.end())
        touched.push_back(shard);
    }
    sum += probed.weights[q] * static_cast<double>(touched.size());
    total += probed.weights[q];
  }
  return total > 0 ? sum / total : 0;
}

namespace {

// What LPT places, heaviest first (ties: smaller list id): one item per list, two of half its
// load for the `replicate` heaviest lists with a positive load when shards > 1.
struct PlacementItem {
  double load;
  int list;
};

std::vector<PlacementItem> placement_items(const std::vector<double>& load, int shards,
                                           int replicate) {
  const int n = static_cast<int>(load.size());
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return load[a] > load[b]; });
  std::vector<int> copies(n, 1);
  if (shards > 1)
    for (int i = 0; i < std::min(replicate, n); ++i)
      if (load[order[i]] > 0) copies[order[i]] = 2;
  std::vector<PlacementItem> items;
  for (int j = 0; j < n; ++j)
    for (int c = 0; c < copies[j]; ++c) items.push_back({load[j] / copies[j], j});
  std::stable_sort(items.begin(), items.end(), [](const PlacementItem& a, const PlacementItem& b) {
    return a.load > b.load || (a.load == b.load && a.list < b.list);
  });
  return items;
}

}  // namespace

std::vector<std::vector<int>> place_lpt(const std::vector<double>& load, int shards,
                                        int replicate) {
  if (shards < 1) throw std::invalid_argument("place_lpt: shards must be >= 1");
  const int n = static_cast<int>(load.size());
  const std::vector<PlacementItem> items = placement_items(load, shards, replicate);
  std::vector<double> shard_load(shards, 0.0);
  std::vector<std::vector<int>> placement(n);
  for (const PlacementItem& item : items) {
    int best = -1;
    for (int s = 0; s < shards; ++s) {
      const auto& held = placement[item.list];
      if (std::find(held.begin(), held.end(), s) != held.end()) continue;
      if (best < 0 || shard_load[s] < shard_load[best]) best = s;
    }
    placement[item.list].push_back(best);
    shard_load[best] += item.load;
  }
  return placement;
}

std::vector<std::vector<int>> place_colocated(const std::vector<double>& load,
                                              const ProbedLists& probed, int shards, int replicate,
                                              double slack) {
  if (shards < 1) throw std::invalid_argument("place_colocated: shards must be >= 1");
  const int n = static_cast<int>(load.size());
  // The queries probing each list (CSR).
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t list : probed.lists)
    if (list >= 0 && list < n) ++first[list + 1];
  for (int j = 0; j < n; ++j) first[j + 1] += first[j];
  std::vector<int64_t> probers(static_cast<size_t>(first[n]));
  {
    std::vector<int64_t> next(first.begin(), first.end() - 1);
    for (int64_t q = 0; q < probed.queries(); ++q)
      for (int t = 0; t < probed.nprobe; ++t) {
        const int64_t list = probed.lists[q * probed.nprobe + t];
        if (list >= 0 && list < n) probers[next[list]++] = q;
      }
  }
  // reach[q]: (shard, lists of query q's there) under the placement so far; a copy c of a list
  // counts for the queries q with q % copies == c, as search routes them.
  std::vector<std::vector<std::pair<int, int>>> reach(static_cast<size_t>(probed.queries()));
  const auto lists_at = [&](int64_t q, int shard) -> int& {
    for (auto& [s, count] : reach[q])
      if (s == shard) return count;
    reach[q].push_back({shard, 0});
    return reach[q].back().second;
  };
  const auto count_at = [&](int64_t q, int shard) {
    for (const auto& [s, count] : reach[q])
      if (s == shard) return count;
    return 0;
  };

  const std::vector<PlacementItem> items = placement_items(load, shards, replicate);
  std::vector<int> copies(n, 0);
  for (const PlacementItem& item : items) ++copies[item.list];
  const double cap =
      (1 + std::max(0.0, slack)) * std::accumulate(load.begin(), load.end(), 0.0) / shards;
  std::vector<double> shard_load(shards, 0.0), affinity(shards);
  std::vector<std::vector<int>> placement(n);
  for (const PlacementItem& item : items) {
    std::fill(affinity.begin(), affinity.end(), 0.0);
    const auto& held = placement[item.list];
    for (int64_t i = first[item.list]; i < first[item.list + 1]; ++i) {
      if (static_cast<size_t>(probers[i]) % copies[item.list] != held.size()) continue;
      for (const auto& [s, count] : reach[probers[i]])
        if (count > 0) affinity[s] += probed.weights[probers[i]];
    }
    int best = -1, least = -1;
    for (int s = 0; s < shards; ++s) {
      if (std::find(held.begin(), held.end(), s) != held.end()) continue;
      if (least < 0 || shard_load[s] < shard_load[least]) least = s;
      if (shard_load[s] + item.load > cap) continue;
      if (best < 0 || affinity[s] > affinity[best] ||
          (affinity[s] == affinity[best] && shard_load[s] < shard_load[best]))
        best = s;
    }
    if (best < 0) best = least;
    placement[item.list].push_back(best);
    shard_load[best] += item.load;
    const size_t c = held.size() - 1;  // this copy
    for (int64_t i = first[item.list]; i < first[item.list + 1]; ++i)
      if (static_cast<size_t>(probers[i]) % copies[item.list] == c) ++lists_at(probers[i], best);
  }

  // Refinement: a list of one copy moves to the shard that most lowers the weighted count of
  // (query, shard) pairs, within the cap, until a pass moves none. The greedy fills a shard up
  // to the cap and then has to split the rest of a group of lists; moves mend some of that.
  std::vector<double> leave_gain(shards);
  for (int pass = 0; pass < kRefinePasses; ++pass) {
    bool moved = false;
    for (const PlacementItem& item : items) {
      const int j = item.list;
      if (placement[j].size() != 1) continue;
      const int from = placement[j][0];
      // Pairs saved by leaving `from`, minus pairs added at each other shard.
      double saved = 0;
      std::fill(leave_gain.begin(), leave_gain.end(), 0.0);
      for (int64_t i = first[j]; i < first[j + 1]; ++i) {
        const int64_t q = probers[i];
        const double w = probed.weights[q];
        if (count_at(q, from) == 1) saved += w;
        for (int t = 0; t < shards; ++t)
          if (t != from && count_at(q, t) == 0) leave_gain[t] += w;
      }
      int to = -1;
      double best_gain = 1e-12 * (1 + saved);
      for (int t = 0; t < shards; ++t) {
        if (t == from || shard_load[t] + load[j] > cap) continue;
        const double gain = saved - leave_gain[t];
        if (gain > best_gain) best_gain = gain, to = t;
      }
      if (to < 0) continue;
      for (int64_t i = first[j]; i < first[j + 1]; ++i) {
        --lists_at(probers[i], from);
        ++lists_at(probers[i], to);
      }
      shard_load[from] -= load[j];
      shard_load[to] += load[j];
      placement[j][0] = to;
      moved = true;
    }
    if (!moved) break;
  }
  return placement;
}

std::vector<double> shard_loads(const std::vector<std::vector<int>>& placement,
                                const std::vector<double>& load, int shards) {
  std::vector<double> out(shards, 0.0);
  for (size_t j = 0; j < placement.size(); ++j)
    for (int s : placement[j]) out[s] += load[j] / static_cast<double>(placement[j].size());
  return out;
}

double max_over_mean(const std::vector<double>& loads) {
  if (loads.empty()) return 1;
  const double mean =
      std::accumulate(loads.begin(), loads.end(), 0.0) / static_cast<double>(loads.size());
  if (!(mean > 0)) return 1;
  return *std::max_element(loads.begin(), loads.end()) / mean;
}

}  // namespace sf::stages
