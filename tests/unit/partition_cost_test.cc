// Unit tests for the cost model of stages/partition.h on one rank: access frequency, the
// scan-cost calibration and fit (noise and outliers leave the plan unchanged), probe curves.
#include "stages/partition.h"

#include <faiss/IndexFlat.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "io/index_file.h"
#include "tests/test_util.h"
#include "tests/unit/partition_fixtures.h"

namespace sf::stages {
namespace {

TEST(AccessFrequency, WeightedShareOfQueriesProbingEachList) {
  faiss::IndexFlatL2 quantizer(1);
  const float centroids[] = {0, 10, 20, 30};
  quantizer.add(4, centroids);
  const float queries[] = {1, 2, 19, 31};
  // nprobe 1: lists 0, 0, 2, 3.
  auto a = access_frequency(quantizer, queries, 4, {}, 1);
  EXPECT_DOUBLE_EQ(a[0], 0.5);
  EXPECT_DOUBLE_EQ(a[1], 0.0);
  EXPECT_DOUBLE_EQ(a[2], 0.25);
  EXPECT_DOUBLE_EQ(a[3], 0.25);
  // nprobe 2: {0,1}, {0,1}, {2,1}, {3,2}; weights 1, 1, 2, 0.
  a = access_frequency(quantizer, queries, 4, {1, 1, 2, 0}, 2);
  EXPECT_DOUBLE_EQ(a[0], 0.5);
  EXPECT_DOUBLE_EQ(a[1], 1.0);
  EXPECT_DOUBLE_EQ(a[2], 0.5);
  EXPECT_DOUBLE_EQ(a[3], 0.0);
  EXPECT_DOUBLE_EQ(std::accumulate(a.begin(), a.end(), 0.0), 2.0);  // sums to nprobe
  EXPECT_THROW(access_frequency(quantizer, queries, 4, {1, 2}, 1), std::invalid_argument);
}

TEST(ScanCost, CalibratedLinearFitGrowsWithListSize) {
  const std::vector<float> x = testing::gaussian_mixture(2000, kDim, 8, 1);
  for (const char* factory : {"IVF8,Flat", "IVF8,PQ4x4np"}) {
    std::vector<char> empty;
    auto index = build(factory, x, &empty);
    const ScanCost c = calibrate_scan_cost(*io::deserialize_index(empty), 7);
    ASSERT_EQ(c.sizes.size(), 9u) << factory;
    ASSERT_EQ(c.seconds.size(), 9u);
    EXPECT_EQ(c.a / c.b, snap_overhead_codes(c.a / c.b)) << factory;  // a snapped overhead
    EXPECT_EQ(c.source, "calibrated");
    EXPECT_GE(c.a, 0.0);
    EXPECT_GT(c.b, 0.0);
    EXPECT_GT(c(4096), c(64));
    // What it reports is the fit of what it measured (the timings themselves are the machine's:
    // how a fit copes with noise and outliers is tested on synthetic timings below).
    for (double t : c.seconds) EXPECT_GT(t, 0.0) << factory;
    const ScanCost refit = fit_scan_cost(c.sizes, c.seconds);
    EXPECT_EQ(refit.a, c.a) << factory;
    EXPECT_EQ(refit.b, c.b) << factory;
  }
  const std::vector<double> costs =
      expected_costs({0.5, 0.0, 1.0}, {100, 50, 0}, ScanCost::linear(1.0, 0.5));
  EXPECT_DOUBLE_EQ(costs[0], 0.5 * (1.0 + 50.0));
  EXPECT_DOUBLE_EQ(costs[1], 0.0);
  EXPECT_DOUBLE_EQ(costs[2], 0.0);  // an empty list costs nothing
}

TEST(ScanCost, FitRecoversTheLineAndSnapsTheOverheadToAPowerOfTwo) {
  const std::vector<int64_t> sizes = {16, 64, 256, 1024, 4096};
  auto times = [&](double a, double b) {
    std::vector<double> t;
    for (int64_t s : sizes) t.push_back(a + b * static_cast<double>(s));
    return t;
  };
  ScanCost c = fit_scan_cost(sizes, times(64e-9, 1e-9));  // overhead 64 codes: exact
  EXPECT_NEAR(c.b, 1e-9, 1e-15);
  EXPECT_NEAR(c.a / c.b, 64.0, 1e-9);
  EXPECT_EQ(c.source, "calibrated");
  EXPECT_EQ(c.seconds, times(64e-9, 1e-9));
  c = fit_scan_cost(sizes, times(50e-9, 1e-9));  // 50 codes -> 64 (log2 5.64 rounds to 6)
  EXPECT_NEAR(c.a / c.b, 64.0, 1e-9);
  c = fit_scan_cost(sizes, times(40e-9, 1e-9));  // 40 codes -> 32
  EXPECT_NEAR(c.a / c.b, 32.0, 1e-9);
  c = fit_scan_cost(sizes, times(5e-9, 2e-9));  // 2.5 codes: not resolved, 0
  EXPECT_EQ(c.a, 0.0);
  EXPECT_NEAR(c.b, 2e-9, 1e-15);
  // Times falling with the size: no slope to fit; through the origin at the largest size.
  c = fit_scan_cost({16, 4096}, {2e-6, 1e-6});
  EXPECT_EQ(c.a, 0.0);
  EXPECT_DOUBLE_EQ(c.b, 1e-6 / 4096);
  EXPECT_EQ(snap_overhead_codes(0.0), 0.0);
  EXPECT_EQ(snap_overhead_codes(8.0), 8.0);
  EXPECT_EQ(snap_overhead_codes(1000.0), 1024.0);
  EXPECT_THROW(fit_scan_cost({16}, {1e-6}), std::invalid_argument);
  EXPECT_THROW(fit_scan_cost({16, 32}, {1e-6}), std::invalid_argument);
  EXPECT_THROW(fit_scan_cost({16, 32}, {1e-6, 0.0}), std::invalid_argument);
}

// The scan-cost noise tests: one skewed workload over IVF32 on 4 shards; its placement under
// a cost model, and the list sizes a calibration times.
struct NoiseCase {
  std::unique_ptr<faiss::Index> index;
  Workload w;
  PartitionOptions o;
  std::vector<int64_t> sizes = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

  NoiseCase() {
    omp_set_num_threads(1);
    const std::vector<float> x = testing::gaussian_mixture(4000, kDim, 10, 11);
    index = build("IVF32,Flat", x);
    w.nq = 300;
    w.queries = skewed_queries(x, 0, w.nq, 12);
    o.shards = 4;
    o.nprobe = 4;
  }
  std::vector<std::vector<int>> placement(const ScanCost& cost) const {
    std::vector<std::vector<int>> out;
    for (const ListPlan& l : make_plan(*index, &w, o, cost).lists) out.push_back(l.shards);
    return out;
  }
};

// Timing noise (each time off by up to +-10%, as measured on a loaded machine) changes the fit
// but not the snapped overhead, so the plan stays the same from run to run.
TEST(ScanCost, NoisyTimingsGiveTheSamePlan) {
  const NoiseCase n;
  const std::vector<int64_t>& sizes = n.sizes;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  std::vector<std::vector<int>> first;
  std::set<double> fitted_b;
  for (int run = 0; run < 40; ++run) {
    std::vector<double> t;
    for (int64_t s : sizes) t.push_back((32e-9 + 1e-9 * static_cast<double>(s)) * noise(rng));
    const ScanCost c = fit_scan_cost(sizes, t);
    fitted_b.insert(c.b);
    ASSERT_NEAR(c.a / c.b, 32.0, 1e-9) << "run " << run;
    const std::vector<std::vector<int>> placement = n.placement(c);
    if (run == 0) first = placement;
    EXPECT_EQ(placement, first) << "run " << run;
  }
  EXPECT_GT(fitted_b.size(), 30u);  // the noise did reach the fit
}

// A loaded machine also gives outliers: in up to 3 of the 7 rounds a size is timed 10x slower
// (a burst of load over a few consecutive sizes of one round). The median per size drops them:
// the fit is that of the clean timings' neighbourhood, the snapped overhead and the plan are
// unchanged, and the fit stays close to the line at the largest size.
TEST(ScanCost, OutlierRoundsGiveTheSamePlan) {
  const NoiseCase n;
  const std::vector<int64_t>& sizes = n.sizes;
  const int rounds = 7;
  auto line = [](int64_t s) { return 32e-9 + 1e-9 * static_cast<double>(s); };
  const std::vector<std::vector<int>> clean = n.placement(ScanCost::linear(32e-9, 1e-9));
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  std::uniform_int_distribution<int> pick_round(0, rounds - 1), pick_size(0, 8), burst_len(1, 4);
  int slowed = 0;
  for (int run = 0; run < 40; ++run) {
    std::vector<std::vector<double>> timings(sizes.size());
    std::vector<std::vector<bool>> slow(sizes.size(), std::vector<bool>(rounds, false));
    // Bursts: each slows a few consecutive sizes of one round 10x, while every size keeps at
    // least 4 of its 7 rounds clean (a majority: what the median needs).
    for (int burst = 0; burst < 6; ++burst) {
      const int r = pick_round(rng), first = pick_size(rng), len = burst_len(rng);
      for (int i = first; i < std::min<int>(first + len, 9); ++i) {
        const auto n = std::count(slow[i].begin(), slow[i].end(), true);
        if (n < 3 && !slow[i][r]) slow[i][r] = true;
      }
    }
    for (size_t i = 0; i < sizes.size(); ++i)
      for (int r = 0; r < rounds; ++r) {
        timings[i].push_back(line(sizes[i]) * noise(rng) * (slow[i][r] ? 10.0 : 1.0));
        slowed += slow[i][r];
      }
    const ScanCost c = fit_scan_cost_rounds(sizes, timings);
    ASSERT_NEAR(c.a / c.b, 32.0, 1e-9) << "run " << run;
    EXPECT_NEAR(c(4096) / line(4096), 1.0, 0.1) << "run " << run;
    EXPECT_EQ(n.placement(c), clean) << "run " << run;
  }
  EXPECT_GT(slowed, 40 * 9);  // the outliers did reach the timings (~1 in 4 of them)
  EXPECT_THROW(fit_scan_cost_rounds(sizes, {}), std::invalid_argument);
  EXPECT_THROW(fit_scan_cost_rounds({16, 32}, {{1e-6}, {}}), std::invalid_argument);
}

TEST(ProbeCurve, RecallAndCostPerNprobeAndTheCostAtEqualRecall) {
  faiss::IndexFlatL2 quantizer(1);
  const float centroids[] = {0, 10, 20, 30};
  quantizer.add(4, centroids);
  // Query 0 at 1 probes 0, 1, 2, 3; query 1 at 29 probes 3, 2, 1, 0.
  const float queries[] = {1, 29};
  // k = 2: query 0's neighbours in lists 0 and 2; query 1's in list 3 and none (-1).
  const std::vector<int64_t> neighbours = {0, 2, 3, -1};
  const std::vector<int64_t> sizes = {10, 20, 30, 0};
  const ProbeCurve c = probe_curve(quantizer, queries, 2, {}, neighbours, 2,
                                   sizes, ScanCost::linear(1.0, 0.1), 4);
  ASSERT_EQ(c.recall.size(), 4u);
  // Recall: query 0 0.5, 0.5, 1, 1; query 1 (one known neighbour) 1, 1, 1, 1.
  EXPECT_DOUBLE_EQ(c.recall[0], 0.75);
  EXPECT_DOUBLE_EQ(c.recall[1], 0.75);
  EXPECT_DOUBLE_EQ(c.recall[2], 1.0);
  // Cost (lambda = 1 + 0.1 s, empty lists free): query 0 2, 5, 9, 9; query 1 0, 4, 7, 9.
  EXPECT_DOUBLE_EQ(c.cost[0], 1.0);
  EXPECT_DOUBLE_EQ(c.cost[1], 4.5);
  EXPECT_DOUBLE_EQ(c.cost[2], 8.0);
  EXPECT_DOUBLE_EQ(c.cost[3], 9.0);
  double nprobe = 0;
  EXPECT_DOUBLE_EQ(cost_at_recall(c, 0.7, &nprobe), 1.0);
  EXPECT_DOUBLE_EQ(nprobe, 1.0);
  // 0.875 lies halfway between nprobe 2 (0.75) and 3 (1.0): cost halfway, 6.25.
  EXPECT_DOUBLE_EQ(cost_at_recall(c, 0.875, &nprobe), 6.25);
  EXPECT_DOUBLE_EQ(nprobe, 2.5);
  // Weights: query 1 only.
  const ProbeCurve w = probe_curve(quantizer, queries, 2, {0, 1}, neighbours, 2, sizes,
                                   ScanCost::linear(1.0, 0.1), 2);
  ASSERT_EQ(w.recall.size(), 2u);
  EXPECT_DOUBLE_EQ(w.recall[0], 1.0);
  EXPECT_DOUBLE_EQ(w.cost[1], 4.0);
  // Not reached within the curve: infinite cost, nprobe 0.
  const ProbeCurve short_curve = probe_curve(quantizer, queries, 2, {}, neighbours, 2, sizes,
                                             ScanCost::linear(1.0, 0.1), 1);
  EXPECT_TRUE(std::isinf(cost_at_recall(short_curve, 0.9, &nprobe)));
  EXPECT_EQ(nprobe, 0.0);
  EXPECT_THROW(probe_curve(quantizer, queries, 2, {}, {0, 1}, 2, sizes, ScanCost::linear(1, 1), 2),
               std::invalid_argument);
}

}  // namespace
}  // namespace sf::stages
