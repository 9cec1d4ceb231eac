// Unit tests for the plan of stages/partition.h on one rank: placement by count and by cost (a
// workload-aware plan is never worse than count balance by its own cost model), co-location,
// the versioned JSON round trip, and shard files that stock FAISS searches.
#include "stages/partition.h"

#include <faiss/IndexIVF.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "io/index_file.h"
#include "stages/ivf_index.h"
#include "tests/test_util.h"
#include "tests/unit/partition_fixtures.h"

namespace sf::stages {
namespace {

// The plan of a built index: placement, round trip, shard files.
class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    x_ = testing::gaussian_mixture(4000, kDim, 10, 11);
    index_ = build("IVF32,Flat", x_, &empty_);
    workload_.source = "test";
    workload_.queries = skewed_queries(x_, 0, 300, 12);
    workload_.nq = 300;
    options_.shards = 4;
    options_.nprobe = 4;
  }
  std::vector<float> x_;
  std::vector<char> empty_;
  std::unique_ptr<faiss::Index> index_;
  Workload workload_;
  PartitionOptions options_;
  ScanCost lambda_ = ScanCost::linear(1e-6, 1e-8);
};

TEST_F(PlanTest, WithoutWorkloadListsArePlacedByCount) {
  const PartitionPlan plan = make_plan(*index_, nullptr, options_, lambda_);
  EXPECT_EQ(plan.balance, "count");
  EXPECT_EQ(plan.nlist, 32);
  std::vector<double> sizes;
  for (const auto& l : plan.lists) sizes.push_back(static_cast<double>(l.size));
  std::vector<std::vector<int>> placement;
  for (const auto& l : plan.lists) placement.push_back(l.shards);
  EXPECT_EQ(placement, place_lpt(sizes, 4, 0));
  // Uniform access nprobe / nlist.
  for (const auto& l : plan.lists) EXPECT_DOUBLE_EQ(l.access, 4.0 / 32.0);
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), 0.0), 4000.0);
}

TEST_F(PlanTest, WorkloadPlanNeverWorseThanCountBalanceByItsCostModel) {
  for (uint64_t seed = 0; seed < 12; ++seed) {
    Workload w;
    w.nq = 200;
    w.queries = skewed_queries(x_, static_cast<int64_t>(seed * 331 % 4000), w.nq, seed);
    if (seed % 3 == 0) {  // and weighted workloads
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<float> u(0, 5);
      for (int64_t i = 0; i < w.nq; ++i) w.weights.push_back(u(rng));
    }
    for (int shards : {2, 3, 5}) {
      PartitionOptions o = options_;
      o.shards = shards;
      o.replicate_hot = static_cast<int>(seed % 2);
      const PartitionPlan plan = make_plan(*index_, &w, o, lambda_);
      std::vector<double> cost, sizes;
      std::vector<std::vector<int>> placement;
      for (const auto& l : plan.lists) {
        cost.push_back(l.cost);
        sizes.push_back(static_cast<double>(l.size));
        placement.push_back(l.shards);
      }
      const double mine = max_over_mean(shard_loads(placement, cost, shards));
      const double by_count =
          max_over_mean(shard_loads(place_lpt(sizes, shards, o.replicate_hot), cost, shards));
      EXPECT_LE(mine, by_count + 1e-12) << "seed " << seed << " shards " << shards;
      EXPECT_DOUBLE_EQ(plan.max_over_mean_cost, mine);
      EXPECT_DOUBLE_EQ(plan.count_balanced_max_over_mean_cost, by_count);
    }
  }
  // A skewed workload on 4 shards: cost balance is strictly better than count balance.
  const PartitionPlan plan = make_plan(*index_, &workload_, options_, lambda_);
  EXPECT_EQ(plan.balance, "cost");
  EXPECT_LT(plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost);
  // Co-location is kept only when the workload's queries reach fewer shards; off, LPT on cost.
  EXPECT_GE(plan.shards_per_query, 1.0);
  EXPECT_LE(plan.shards_per_query, plan.lpt_shards_per_query);

  PartitionOptions off = options_;
  off.colocate_slack = -1;
  const PartitionPlan lpt = make_plan(*index_, &workload_, off, lambda_);
  EXPECT_FALSE(lpt.colocated);
  EXPECT_EQ(lpt.shards_per_query, 0.0);
  std::vector<double> cost;
  for (const auto& l : lpt.lists) cost.push_back(l.cost);
  for (size_t j = 0; j < lpt.lists.size(); ++j)
    EXPECT_EQ(lpt.lists[j].shards, place_lpt(cost, options_.shards, 0)[j]);
  // With co-location the balance is still no worse than count balance's.
  EXPECT_LE(plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost);
  if (plan.colocated) {
    EXPECT_LE(plan.max_over_mean_cost,
              std::max(1 + options_.colocate_slack, lpt.max_over_mean_cost));
  }
}

TEST_F(PlanTest, CoLocationKeepsQueryRegionsOnFewerShards) {
  // Two query regions (around row 0 and around row `second`) on 2 shards: LPT deals each
  // region's hot lists out to both shards, so every query reaches both. Co-location keeps a
  // region's lists together as far as the balance allows: when one region carries most of the
  // cost, its lists must still be split, so the gain differs from pair to pair.
  double colocated_reach = 0, lpt_reach = 0;
  int applied = 0;
  for (int64_t second = 1; second < 12; ++second) {
    Workload w;
    w.source = "two regions";
    w.queries = skewed_queries(x_, 0, 200, 21);
    const std::vector<float> other = skewed_queries(x_, second, 200, 22);
    w.queries.insert(w.queries.end(), other.begin(), other.end());
    w.nq = 400;
    PartitionOptions o = options_;
    o.shards = 2;
    const PartitionPlan plan = make_plan(*index_, &w, o, lambda_);
    EXPECT_LE(plan.shards_per_query, plan.lpt_shards_per_query) << second;
    EXPECT_LE(plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost) << second;
    if (plan.colocated) {
      ++applied;
      EXPECT_LE(plan.max_over_mean_cost, 1 + o.colocate_slack + 1e-12) << second;
    }
    colocated_reach += plan.shards_per_query;
    lpt_reach += plan.lpt_shards_per_query;
    // What the plan reports is what its placement gives.
    std::vector<std::vector<int>> placement;
    for (const auto& l : plan.lists) placement.push_back(l.shards);
    const std::vector<float> wq = to_ivf_space(*index_, w.nq, w.queries.data());
    const ProbedLists probed =
        probed_lists(*find_ivf(index_.get())->quantizer, wq.data(), w.nq, {}, o.nprobe, 4096);
    EXPECT_DOUBLE_EQ(shards_per_query(probed, placement), plan.shards_per_query) << second;
  }
  EXPECT_GE(applied, 8);
  EXPECT_LT(colocated_reach, 0.8 * lpt_reach);
}

TEST_F(PlanTest, RoundTripsThroughVersionedJson) {
  options_.replicate_hot = 2;
  PartitionPlan plan = make_plan(*index_, &workload_, options_, lambda_);
  plan.repartition.nlist_before = 30;
  plan.repartition.nlist_after = 32;
  plan.repartition.splits = 1;
  plan.repartition.merges = 1;
  plan.repartition.tiers = plan_tiers({0.5, 0.25, 0.25}, {10, 20, 30}, 2, 3, 1);
  plan.repartition.applied = true;
  plan.repartition.recall_queries = 300;
  plan.repartition.recall_target = 0.91;
  plan.repartition.nprobe_after = 5.5;
  plan.scan_cost.sizes = {64, 256};
  plan.scan_cost.seconds = {1e-6, 3e-6};
  testing::TempDir dir;
  write_plan(plan, dir.file("plan.json"));
  const PartitionPlan back = read_plan(dir.file("plan.json"));
  EXPECT_EQ(back.nlist, plan.nlist);
  EXPECT_EQ(back.shards, plan.shards);
  EXPECT_EQ(back.balance, plan.balance);
  EXPECT_EQ(back.workload, "test");
  EXPECT_EQ(back.workload_queries, 300);
  EXPECT_EQ(back.scan_cost.sizes, plan.scan_cost.sizes);
  EXPECT_DOUBLE_EQ(back.scan_cost.b, plan.scan_cost.b);
  EXPECT_EQ(back.colocated, plan.colocated);
  EXPECT_DOUBLE_EQ(back.colocate_slack, plan.colocate_slack);
  EXPECT_DOUBLE_EQ(back.shards_per_query, plan.shards_per_query);
  EXPECT_DOUBLE_EQ(back.lpt_shards_per_query, plan.lpt_shards_per_query);
  EXPECT_EQ(back.repartition.nlist_before, 30);
  EXPECT_TRUE(back.repartition.applied);
  EXPECT_EQ(back.repartition.recall_queries, 300);
  EXPECT_DOUBLE_EQ(back.repartition.recall_target, 0.91);
  EXPECT_DOUBLE_EQ(back.repartition.nprobe_after, 5.5);
  EXPECT_EQ(back.repartition.tiers.lists_after, plan.repartition.tiers.lists_after);
  EXPECT_EQ(back.repartition.tiers.rows, plan.repartition.tiers.rows);
  ASSERT_EQ(back.lists.size(), plan.lists.size());
  int replicated = 0;
  for (size_t j = 0; j < plan.lists.size(); ++j) {
    EXPECT_EQ(back.lists[j].size, plan.lists[j].size);
    EXPECT_DOUBLE_EQ(back.lists[j].access, plan.lists[j].access);
    EXPECT_DOUBLE_EQ(back.lists[j].cost, plan.lists[j].cost);
    EXPECT_EQ(back.lists[j].shards, plan.lists[j].shards);
    replicated += back.lists[j].shards.size() > 1;
  }
  EXPECT_EQ(replicated, 2);
  // Another format version, or a list on a shard that does not exist, is refused.
  nlohmann::json j = plan_to_json(plan);
  j["format_version"] = kPlanFormatVersion + 1;
  EXPECT_THROW(plan_from_json(j), std::runtime_error);
  j = plan_to_json(plan);
  j["lists"]["shards"][0] = {7};
  EXPECT_THROW(plan_from_json(j), std::runtime_error);
  EXPECT_THROW(read_plan(dir.file("missing.json")), std::runtime_error);
}

TEST_F(PlanTest, ShardFilesHoldExactlyTheirListsAndSearchWithStockFaiss) {
  options_.replicate_hot = 1;
  const PartitionPlan plan = make_plan(*index_, &workload_, options_, lambda_);
  const faiss::IndexIVF* merged = find_ivf(index_.get());
  int64_t total = 0, replica_rows = 0;
  for (const auto& l : plan.lists)
    replica_rows += l.size * static_cast<int64_t>(l.shards.size() - 1);
  for (int s = 0; s < plan.shards; ++s) {
    auto shard =
        io::deserialize_index(io::serialize_index(*make_shard_index(*index_, empty_, plan, s)));
    const faiss::IndexIVF* ivf = find_ivf(shard.get());
    const std::vector<int> mine = plan.lists_of_shard(s);
    for (int j = 0; j < plan.nlist; ++j) {
      const bool held = std::find(mine.begin(), mine.end(), j) != mine.end();
      EXPECT_EQ(ivf->invlists->list_size(j), held ? merged->invlists->list_size(j) : 0u);
    }
    total += shard->ntotal;
  }
  EXPECT_EQ(total, index_->ntotal + replica_rows);
  PartitionPlan wrong = plan;
  wrong.nlist = 31;
  EXPECT_THROW(make_shard_index(*index_, empty_, wrong, 0), std::invalid_argument);
  options_.shards = 33;  // more shards than lists
  EXPECT_THROW(make_plan(*index_, nullptr, options_, lambda_), std::invalid_argument);
}

}  // namespace
}  // namespace sf::stages
