#include "stages/partition/tiers.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "stages/ivf_index.h"

namespace sf::stages {

TierPlan plan_tiers(const std::vector<double>& access, const std::vector<int64_t>& sizes, int tiers,
                    int nlist_after, int64_t min_list_size) {
  const int n = static_cast<int>(sizes.size());
  const double total = std::accumulate(access.begin(), access.end(), 0.0);
  int t_count = std::max(1, tiers);
  TierPlan plan;
  plan.tier_of_list.assign(n, 0);
  if (!(total > 0)) t_count = 1;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto density = [&](int j) {
    return sizes[j] > 0 ? access[j] / static_cast<double>(sizes[j]) : 0.0;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return density(a) > density(b); });
  // A list's tier: where its share of the access mass starts (a list holding more than one
  // tier's mass does not leave tiers empty before it).
  double cum = 0;
  std::vector<int> raw(n);
  for (int j : order) {
    raw[j] = access[j] > 0 && total > 0
                 ? std::min(t_count - 1, static_cast<int>(cum / total * t_count))
                 : t_count - 1;
    cum += access[j];
  }
  // Renumber the tiers that hold lists, hottest first.
  std::vector<int> renum(t_count, -1);
  int used = 0;
  for (int j : order)
    if (renum[raw[j]] < 0) renum[raw[j]] = -2;
  for (int t = 0; t < t_count; ++t)
    if (renum[t] == -2) renum[t] = used++;
  plan.access.assign(used, 0.0);
  plan.rows.assign(used, 0);
  plan.lists_before.assign(used, 0);
  for (int j = 0; j < n; ++j) {
    const int t = renum[raw[j]];
    plan.tier_of_list[j] = t;
    plan.access[t] += access[j];
    plan.rows[t] += sizes[j];
    plan.lists_before[t] += 1;
  }
  if (!(total > 0)) {
    plan.lists_after = {nlist_after};
    return plan;
  }
  // Lists per tier proportional to sqrt(Q N); at least 1 and a quarter of the tier's lists
  // today (cold tiers coarsen at most 4x), at most rows / min_list_size.
  std::vector<double> weight(used), ideal(used);
  double wsum = 0;
  for (int t = 0; t < used; ++t)
    wsum += weight[t] = std::sqrt(plan.access[t] * static_cast<double>(plan.rows[t]));
  std::vector<int> lo(used), hi(used);
  plan.lists_after.assign(used, 0);
  int given = 0;
  for (int t = 0; t < used; ++t) {
    hi[t] =
        static_cast<int>(std::max<int64_t>(1, plan.rows[t] / std::max<int64_t>(1, min_list_size)));
    lo[t] = std::min(hi[t], std::max(1, (plan.lists_before[t] + 3) / 4));
    ideal[t] = wsum > 0 ? nlist_after * weight[t] / wsum : plan.lists_before[t];
    plan.lists_after[t] = std::clamp(static_cast<int>(std::floor(ideal[t])), lo[t], hi[t]);
    given += plan.lists_after[t];
  }
  // Hand out (or take back) the remainder, largest shortfall (or excess) first.
  while (given != nlist_after) {
    int best = -1;
    double gap = 0;
    for (int t = 0; t < used; ++t) {
      const double g =
          given < nlist_after ? ideal[t] - plan.lists_after[t] : plan.lists_after[t] - ideal[t];
      const bool room =
          given < nlist_after ? plan.lists_after[t] < hi[t] : plan.lists_after[t] > lo[t];
      if (room && (best < 0 || g > gap)) {
        best = t;
        gap = g;
      }
    }
    if (best < 0) break;  // every tier at its bound
    plan.lists_after[best] += given < nlist_after ? 1 : -1;
    given += given < nlist_after ? 1 : -1;
  }
  return plan;
}

void set_coarse_centroids(faiss::Index& index, const std::vector<float>& centroids, int nlist) {
  faiss::IndexIVF& ivf = ivf_of(index, "partition");
  if (ivf.ntotal != 0) throw std::invalid_argument("set_coarse_centroids: the index is not empty");
  if (centroids.size() != static_cast<size_t>(nlist) * ivf.d)
    throw std::invalid_argument("set_coarse_centroids: wrong centroid table size");
  fill_quantizer(ivf, nlist, centroids.data());
  ivf.nlist = static_cast<size_t>(nlist);
  ivf.replace_invlists(new faiss::ArrayInvertedLists(ivf.nlist, ivf.code_size), true);
  if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(&ivf); pq != nullptr && pq->by_residual)
    pq->precompute_table();
}

}  // namespace sf::stages
