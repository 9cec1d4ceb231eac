// Re-sizing lists in `partition`: tiers.
//
// Lists are ranked by access density A_j / s_j and cut into `tiers` groups of equal access
// mass. A tier of N rows with query mass Q, cut into n lists of N/n rows, has lists probed
// about Q/n each: each list costs ~ b Q N / n^2 and the tier ~ b Q N / n per query. The total
// for a fixed nlist is least, and the cost per list equal, when n is proportional to
// sqrt(Q N): hot tiers get more, smaller lists (a split), cold tiers fewer, larger ones (a
// merge). Each tier whose count changes is re-clustered as a whole (k-means over its rows).
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <vector>

namespace sf::stages {

struct TierPlan {
  std::vector<int> tier_of_list;  // per list
  std::vector<double> access;     // per tier: sum of A_j
  std::vector<int64_t> rows;      // per tier: sum of s_j
  std::vector<int> lists_before;  // per tier
  std::vector<int> lists_after;   // per tier: sum = nlist_after
};

// Pure. `tiers` >= 1; nlist_after >= tiers. Lists with no access fall in the coldest tier. A
// tier gets at least 1 list and at most rows / min_list_size (but at least 1); the remainder
// goes to the tiers with the largest sqrt(Q N) share. All access 0: every tier keeps its count.
TierPlan plan_tiers(const std::vector<double>& access, const std::vector<int64_t>& sizes, int tiers,
                    int nlist_after, int64_t min_list_size);

// Replaces the coarse centroids of a trained, empty index (nlist may change): the quantizer
// is refilled, the inverted lists are new and empty, IVF-PQ's precomputed tables redone.
void set_coarse_centroids(faiss::Index& index, const std::vector<float>& centroids, int nlist);

}  // namespace sf::stages
