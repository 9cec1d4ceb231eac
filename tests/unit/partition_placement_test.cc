// Unit tests for the placement of stages/partition.h: LPT (within Graham's bound, replicas of
// hot lists) and co-location of the lists queries probe together.
#include "stages/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

namespace sf::stages {
namespace {

TEST(PlaceLpt, LongestFirstToTheLeastLoadedShard) {
  // 7 -> s0, 5 -> s1, 4 -> s1, 3 -> s0, 1 -> s1: loads 10 and 10.
  const auto p = place_lpt({3, 7, 1, 5, 4}, 2, 0);
  EXPECT_EQ(p[1], std::vector<int>{0});
  EXPECT_EQ(p[3], std::vector<int>{1});
  EXPECT_EQ(p[4], std::vector<int>{1});
  EXPECT_EQ(p[0], std::vector<int>{0});
  EXPECT_EQ(p[2], std::vector<int>{1});
  EXPECT_EQ(shard_loads(p, {3, 7, 1, 5, 4}, 2), (std::vector<double>{10, 10}));
  EXPECT_DOUBLE_EQ(max_over_mean({10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(max_over_mean({3, 1}), 1.5);
}

TEST(PlaceLpt, WithinGrahamsBoundOnRandomLoads) {
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> heavy(0.0, 1.5);
  for (int trial = 0; trial < 50; ++trial) {
    const int shards = 2 + trial % 5;
    std::vector<double> load(20 + trial);
    for (double& l : load) l = heavy(rng);
    const auto p = place_lpt(load, shards, 0);
    const auto loads = shard_loads(p, load, shards);
    const double total = std::accumulate(load.begin(), load.end(), 0.0);
    const double lower = std::max(total / shards, *std::max_element(load.begin(), load.end()));
    EXPECT_LE(*std::max_element(loads.begin(), loads.end()), (4.0 / 3.0) * lower + 1e-9);
    EXPECT_NEAR(std::accumulate(loads.begin(), loads.end(), 0.0), total, 1e-9);
    for (const auto& shards_of_list : p) EXPECT_EQ(shards_of_list.size(), 1u);
  }
}

TEST(PlaceLpt, ReplicatedHotListsGoToTwoShards) {
  // One list holds most of the load: alone it caps the balance at 9/(12/3) = 2.25.
  const std::vector<double> load = {9, 1, 1, 1};
  EXPECT_NEAR(max_over_mean(shard_loads(place_lpt(load, 3, 0), load, 3)), 2.25, 1e-12);
  const auto p = place_lpt(load, 3, 1);
  ASSERT_EQ(p[0].size(), 2u);
  EXPECT_NE(p[0][0], p[0][1]);
  for (int j = 1; j < 4; ++j) EXPECT_EQ(p[j].size(), 1u);
  EXPECT_LT(max_over_mean(shard_loads(p, load, 3)), 1.5);
  // One shard: nothing to replicate onto.
  EXPECT_EQ(place_lpt(load, 1, 2)[0].size(), 1u);
}

// Queries probing `lists` (rows of nprobe), weight 1.
ProbedLists probes(int nprobe, std::vector<int64_t> lists) {
  ProbedLists p;
  p.nprobe = nprobe;
  p.lists = std::move(lists);
  p.weights.assign(p.lists.size() / nprobe, 1.0);
  return p;
}

TEST(PlaceColocated, ListsProbedTogetherShareAShard) {
  // Two groups of equal lists, {0, 1, 2, 3} and {4, 5, 6, 7}, each probed together. LPT deals
  // them out alternately (a query reaches both shards); co-location keeps each group whole.
  const std::vector<double> load(8, 1.0);
  const ProbedLists probed = probes(4, {0, 1, 2, 3, 4, 5, 6, 7, 3, 2, 1, 0, 7, 6, 5, 4});
  const auto lpt = place_lpt(load, 2, 0);
  EXPECT_DOUBLE_EQ(shards_per_query(probed, lpt), 2.0);
  const auto colo = place_colocated(load, probed, 2, 0, 0.05);
  EXPECT_DOUBLE_EQ(shards_per_query(probed, colo), 1.0);
  EXPECT_EQ(colo[0], colo[3]);
  EXPECT_EQ(colo[4], colo[7]);
  EXPECT_NE(colo[0], colo[4]);
  EXPECT_DOUBLE_EQ(max_over_mean(shard_loads(colo, load, 2)), 1.0);
  // Without any query the placement is LPT's.
  EXPECT_EQ(place_colocated(load, ProbedLists{}, 2, 0, 0.05), lpt);
}

TEST(PlaceColocated, LoadStaysWithinTheSlackAndReplicasOnTwoShards) {
  std::mt19937_64 rng(9);
  std::lognormal_distribution<double> spread(0.0, 0.7);
  double colocated_reach = 0, lpt_reach = 0;
  for (int trial = 0; trial < 30; ++trial) {
    const int n = 120, shards = 2 + trial % 6, nprobe = 6;
    std::vector<double> load(n);
    for (double& l : load) l = spread(rng);
    std::vector<int64_t> lists;
    std::uniform_int_distribution<int> centre(0, n - 1), step(-4, 4);
    for (int q = 0; q < 300; ++q) {  // a query probes lists near one id: co-access is local
      const int c = centre(rng);
      for (int t = 0; t < nprobe; ++t) lists.push_back((c + step(rng) + n) % n);
    }
    const ProbedLists probed = probes(nprobe, lists);
    const double slack = 0.05 * (trial % 3);
    const int replicate = trial % 2;
    const auto p = place_colocated(load, probed, shards, replicate, slack);
    const auto loads = shard_loads(p, load, shards);
    const double total = std::accumulate(load.begin(), load.end(), 0.0);
    const double biggest = *std::max_element(load.begin(), load.end());
    // Every item fits under the cap or goes to the least loaded shard: max <= cap + one item.
    EXPECT_LE(*std::max_element(loads.begin(), loads.end()),
              (1 + slack) * total / shards + biggest);
    EXPECT_NEAR(std::accumulate(loads.begin(), loads.end(), 0.0), total, 1e-9);
    for (size_t j = 0; j < p.size(); ++j) {
      ASSERT_FALSE(p[j].empty());
      if (p[j].size() == 2) {
        EXPECT_NE(p[j][0], p[j][1]);
      }
      for (int s : p[j]) EXPECT_TRUE(s >= 0 && s < shards);
    }
    EXPECT_EQ(std::count_if(p.begin(), p.end(), [](const auto& c) { return c.size() == 2; }),
              replicate);
    colocated_reach += shards_per_query(probed, p);
    lpt_reach += shards_per_query(probed, place_lpt(load, shards, replicate));
  }
  // A greedy: not better on every instance, but on these local co-access patterns it sends
  // queries to fewer shards overall.
  EXPECT_LT(colocated_reach, 0.8 * lpt_reach);
}

}  // namespace
}  // namespace sf::stages
