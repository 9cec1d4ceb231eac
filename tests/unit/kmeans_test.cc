// Unit tests for stages/kmeans.h on one rank: the training sample (choose_sample) and the
// k-means itself (objective, centroids on well separated data, splits, errors, IP mode).
#include "stages/kmeans.h"

#include "cluster/archive.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "stages/batches.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

// ---- choose_sample ------------------------------------------------------------------------

void expect_valid_sample(const std::vector<int64_t>& ids, int64_t rows, int64_t count) {
  SCOPED_TRACE("rows=" + std::to_string(rows) + " count=" + std::to_string(count));
  ASSERT_EQ(static_cast<int64_t>(ids.size()), std::min(rows, count));
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_GE(ids[i], 0);
    EXPECT_LT(ids[i], rows);
    if (i > 0) {
      EXPECT_LT(ids[i - 1], ids[i]) << "not sorted or not distinct at " << i;
    }
  }
}

TEST(ChooseSample, SortedDistinctAndInRange) {
  for (int64_t rows : {1, 2, 10, 1000, 100000, 10000000})
    for (int64_t count : {int64_t{1}, int64_t{3}, rows / 2, rows - 1})
      if (count > 0) expect_valid_sample(choose_sample(rows, count, 99), rows, count);
}

TEST(ChooseSample, CountZeroIsEmpty) { EXPECT_TRUE(choose_sample(100, 0, 1).empty()); }

TEST(ChooseSample, AllRowsWhenCountReachesRows) {
  for (int64_t count : {100, 101, 1000000}) {
    const std::vector<int64_t> ids = choose_sample(100, count, 5);
    ASSERT_EQ(ids.size(), 100u) << "count=" << count;
    for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(ids[i], i);
  }
}

TEST(ChooseSample, SameSeedSameSample) {
  EXPECT_EQ(choose_sample(1000000, 5000, 42), choose_sample(1000000, 5000, 42));
  EXPECT_EQ(choose_sample(37, 20, 0), choose_sample(37, 20, 0));
}

TEST(ChooseSample, OtherSeedOtherSample) {
  EXPECT_NE(choose_sample(1000000, 5000, 42), choose_sample(1000000, 5000, 43));
  EXPECT_NE(choose_sample(10000, 100, 1), choose_sample(10000, 100, 2));
}

TEST(ChooseSample, SpreadsOverAllRows) {
  // Half of 10000 rows: every tenth of the id space must hold roughly half its rows (a
  // sample taken from one end, or skewed, fails this by far).
  const int64_t rows = 10000;
  const std::vector<int64_t> ids = choose_sample(rows, rows / 2, 7);
  std::vector<int> per_decile(10, 0);
  for (int64_t id : ids) ++per_decile[static_cast<size_t>(id * 10 / rows)];
  for (int decile = 0; decile < 10; ++decile) {
    EXPECT_GT(per_decile[decile], 400) << "decile " << decile;
    EXPECT_LT(per_decile[decile], 600) << "decile " << decile;
  }
}

// ---- distributed_kmeans on one rank --------------------------------------------------------

// `clusters` centres 100 apart (each on its own axis), unit-variance noise: well separated.
struct SeparatedMixture {
  int d = 0;
  std::vector<float> centres;  // clusters x d
  std::vector<float> points;   // n x d
};

SeparatedMixture separated_mixture(int64_t n, int d, int clusters, uint64_t seed) {
  SeparatedMixture m;
  m.d = d;
  m.centres.assign(static_cast<size_t>(clusters) * d, 0.0f);
  for (int c = 0; c < clusters; ++c) m.centres[static_cast<size_t>(c) * d + c] = 100.0f;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  m.points.resize(static_cast<size_t>(n) * d);
  for (int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % clusters);
    for (int j = 0; j < d; ++j)
      m.points[i * d + j] = m.centres[static_cast<size_t>(c) * d + j] + noise(rng);
  }
  return m;
}

double squared_distance(const float* a, const float* b, int d) {
  double s = 0;
  for (int j = 0; j < d; ++j) s += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
  return s;
}

KMeansResult run_serial(const std::vector<float>& x, int d, const KMeansOptions& options) {
  auto comm = cluster::make_serial_comm();
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  return distributed_kmeans(*comm, x.data(), n, 0, n, d, options);
}

TEST(KMeans, ObjectiveNeverIncreases) {
  const int d = 16;
  const std::vector<float> x = sf::testing::gaussian_mixture(3000, d, 20, 11);
  KMeansOptions options;
  options.k = 32;
  options.iterations = 15;
  const KMeansResult r = run_serial(x, d, options);
  ASSERT_EQ(r.objective.size(), 15u);
  ASSERT_EQ(r.centroids.size(), 32u * d);
  // Initial centroids are distinct sample points, so no cluster starts empty and every
  // iteration is a plain Lloyd step, which cannot increase the objective (the fixed-point
  // means round in the last bits only).
  ASSERT_EQ(r.empty_clusters_split, 0);
  for (size_t i = 1; i < r.objective.size(); ++i)
    EXPECT_LE(r.objective[i], r.objective[i - 1] * (1 + 1e-9)) << "iteration " << i;
  EXPECT_LT(r.objective.back(), 0.9 * r.objective.front());
}

TEST(KMeans, CentroidsFindTheCentresOfWellSeparatedClusters) {
  // 4 clusters, 32 centroids: the seeded initial picks land in every cluster (a miss has
  // probability (3/4)^32 per cluster), and well separated clusters keep each centroid in
  // its own cluster. So every true centre gets a centroid close by, and no centroid sits
  // between clusters.
  const int d = 16, clusters = 4;
  const int64_t n = 4000;
  const SeparatedMixture m = separated_mixture(n, d, clusters, 3);
  KMeansOptions options;
  options.k = 32;
  options.iterations = 10;
  const KMeansResult r = run_serial(m.points, d, options);
  ASSERT_EQ(r.centroids.size(), static_cast<size_t>(options.k) * d);
  for (int c = 0; c < clusters; ++c) {
    double best = std::numeric_limits<double>::infinity();
    for (int k = 0; k < options.k; ++k)
      best = std::min(best, squared_distance(&m.centres[c * d], &r.centroids[k * d], d));
    // A centroid inside the cloud is within ~2 sigma per dimension of the centre.
    EXPECT_LT(std::sqrt(best), 4.0) << "no centroid near centre " << c;
  }
  for (int k = 0; k < options.k; ++k) {
    double best = std::numeric_limits<double>::infinity();
    for (int c = 0; c < clusters; ++c)
      best = std::min(best, squared_distance(&m.centres[c * d], &r.centroids[k * d], d));
    EXPECT_LT(std::sqrt(best), 8.0) << "centroid " << k << " lies between clusters";
  }
  // The objective approaches the within-cluster noise: n * d for unit variance, minus what
  // 8 centroids per cluster take away; and it is far below a single misplaced centroid
  // (100^2 per point).
  EXPECT_LT(r.objective.back(), 1.0 * n * d);
  EXPECT_GT(r.objective.back(), 0.3 * n * d);
}

TEST(KMeans, OneCentroidIsTheMean) {
  const int d = 8;
  const std::vector<float> x = sf::testing::gaussian_mixture(1000, d, 3, 5);
  KMeansOptions options;
  options.k = 1;
  options.iterations = 2;
  const KMeansResult r = run_serial(x, d, options);
  for (int j = 0; j < d; ++j) {
    double mean = 0;
    for (int64_t i = 0; i < 1000; ++i) mean += x[i * d + j];
    mean /= 1000;
    EXPECT_NEAR(r.centroids[j], mean, 1e-5 * (1 + std::fabs(mean))) << "dim " << j;
  }
}

TEST(KMeans, AsManyCentroidsAsPointsReproducesThePoints) {
  const int d = 4;
  const std::vector<float> x = sf::testing::gaussian_mixture(10, d, 10, 8);
  KMeansOptions options;
  options.k = 10;
  options.iterations = 3;
  const KMeansResult r = run_serial(x, d, options);
  // Each point is its own cluster: every point is (nearly exactly) one of the centroids.
  for (int i = 0; i < 10; ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (int k = 0; k < 10; ++k)
      best = std::min(best, squared_distance(&x[i * d], &r.centroids[k * d], d));
    EXPECT_LT(best, 1e-8) << "point " << i;
  }
  EXPECT_NEAR(r.objective.back(), 0.0, 1e-6);
}

TEST(KMeans, EmptyClustersAreSplit) {
  // Two distinct points, five copies each, four centroids: at least two initial centroids
  // coincide, so at least one cluster is empty after the first assignment.
  const int d = 3;
  std::vector<float> x;
  for (int i = 0; i < 10; ++i) {
    const float v = i % 2 == 0 ? 1.0f : -2.0f;
    for (int j = 0; j < d; ++j) x.push_back(v + 0.5f * j);
  }
  KMeansOptions options;
  options.k = 4;
  options.iterations = 3;
  const KMeansResult r = run_serial(x, d, options);
  EXPECT_GT(r.empty_clusters_split, 0);
  for (float v : r.centroids) EXPECT_TRUE(std::isfinite(v));
}

TEST(KMeans, FewerPointsThanCentroidsThrows) {
  auto comm = cluster::make_serial_comm();
  const std::vector<float> x(5 * 4, 1.0f);
  KMeansOptions options;
  options.k = 6;
  EXPECT_THROW(distributed_kmeans(*comm, x.data(), 5, 0, 5, 4, options), std::invalid_argument);
}

TEST(KMeans, NonPositiveKThrows) {
  auto comm = cluster::make_serial_comm();
  const std::vector<float> x(5 * 4, 1.0f);
  KMeansOptions options;
  options.k = 0;
  EXPECT_THROW(distributed_kmeans(*comm, x.data(), 5, 0, 5, 4, options), std::invalid_argument);
}

TEST(KMeans, InnerProductGivesUnitNormCentroids) {
  const int d = 16;
  const std::vector<float> x = sf::testing::gaussian_mixture(2000, d, 10, 21);
  KMeansOptions options;
  options.k = 16;
  options.iterations = 8;
  options.inner_product = true;
  const KMeansResult r = run_serial(x, d, options);
  for (int k = 0; k < options.k; ++k) {
    double norm2 = 0;
    for (int j = 0; j < d; ++j) norm2 += double(r.centroids[k * d + j]) * r.centroids[k * d + j];
    EXPECT_NEAR(std::sqrt(norm2), 1.0, 1e-5) << "centroid " << k;
  }
}

TEST(KMeans, CentroidsDoNotDependOnTheNumberOfThreads) {
  const int d = 16;
  const std::vector<float> x = sf::testing::gaussian_mixture(5000, d, 25, 9);
  KMeansOptions options;
  options.k = 20;
  options.iterations = 4;
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const KMeansResult one = run_serial(x, d, options);
  for (int threads : {2, 3, 4}) {
    omp_set_num_threads(threads);
    const KMeansResult many = run_serial(x, d, options);
    EXPECT_EQ(many.centroids, one.centroids) << threads << " threads";
    EXPECT_EQ(many.empty_clusters_split, one.empty_clusters_split) << threads << " threads";
  }
  omp_set_num_threads(saved_threads);
}

// Regression (issue 12): a rank holding a single block ran it in a one-thread OpenMP team,
// which is not an active parallel region, so OpenBLAS split that block's GEMM over
// omp_get_max_threads() threads and the distances (hence the objective) changed in their
// last bits with the thread count. One block, and one block plus a short one, at 1 to 4
// threads: centroids and objective bit for bit.
TEST(KMeans, OneBlockPerRankDoesNotDependOnTheNumberOfThreads) {
  const int d = 16;
  const int saved_threads = omp_get_max_threads();
  for (int64_t n : {kBlockRows, kBlockRows + 500}) {
    const std::vector<float> x = sf::testing::gaussian_mixture(n, d, 25, 103);
    KMeansOptions options;
    options.k = 20;
    options.iterations = 5;
    omp_set_num_threads(1);
    const KMeansResult one = run_serial(x, d, options);
    for (int threads : {2, 3, 4}) {
      omp_set_num_threads(threads);
      const KMeansResult many = run_serial(x, d, options);
      EXPECT_EQ(many.centroids, one.centroids) << n << " rows, " << threads << " threads";
      EXPECT_EQ(many.objective, one.objective) << n << " rows, " << threads << " threads";
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST(KMeans, SameSeedSameCentroidsOtherSeedOthers) {
  const int d = 8;
  const std::vector<float> x = sf::testing::gaussian_mixture(1500, d, 12, 4);
  KMeansOptions options;
  options.k = 16;
  options.iterations = 4;
  const KMeansResult a = run_serial(x, d, options);
  const KMeansResult b = run_serial(x, d, options);
  EXPECT_EQ(a.centroids, b.centroids);
  options.seed += 1;
  const KMeansResult c = run_serial(x, d, options);
  EXPECT_NE(a.centroids, c.centroids);
}

// ---- stopping at an iteration boundary and resuming ---------------------------------------

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs k-means asked to stop before iteration `stop_at`; returns the state it stopped with.
KMeansState stop_at_iteration(const std::vector<float>& x, int d, KMeansOptions options,
                              int stop_at) {
  int checks = 0;
  options.stop_requested = [&] { return ++checks > stop_at; };
  try {
    run_serial(x, d, options);
  } catch (const KMeansStopped& stopped) {
    EXPECT_EQ(checks, stop_at + 1) << "one agreement per iteration boundary";
    return stopped.state();
  }
  ADD_FAILURE() << "k-means did not stop before iteration " << stop_at;
  return {};
}

// Stopped before iteration i, saved through the on-disk encoding and resumed: the same
// centroids, objective and split count as an uninterrupted run, bit for bit.
void expect_resume_equals_uninterrupted(const std::vector<float>& x, int d,
                                        const KMeansOptions& options) {
  const KMeansResult straight = run_serial(x, d, options);
  for (int i = 0; i <= options.iterations; ++i) {
    SCOPED_TRACE("stopped before iteration " + std::to_string(i));
    const KMeansState state = stop_at_iteration(x, d, options, i);
    ASSERT_EQ(state.iteration, i);
    ASSERT_EQ(state.objective.size(), static_cast<size_t>(i));
    const KMeansState saved = decode_kmeans_state(encode_kmeans_state(state));
    KMeansOptions resumed_options = options;
    resumed_options.resume = &saved;
    const KMeansResult resumed = run_serial(x, d, resumed_options);
    EXPECT_TRUE(same_bits(resumed.centroids, straight.centroids));
    EXPECT_EQ(resumed.objective, straight.objective);
    EXPECT_EQ(resumed.empty_clusters_split, straight.empty_clusters_split);
    if (i == options.iterations) {
      // Stopped after the last iteration: the state already holds the final centroids.
      EXPECT_TRUE(same_bits(state.centroids, straight.centroids));
    } else if (i == 1) {
      EXPECT_FALSE(same_bits(state.centroids, straight.centroids))
          << "the data converges too fast to tell a resumed run from a restarted one";
    }
  }
}

TEST(KMeansStop, ResumedRunEqualsUninterruptedL2) {
  const int d = 16;
  const std::vector<float> x = sf::testing::gaussian_mixture(3000, d, 20, 31);
  KMeansOptions options;
  options.k = 24;
  options.iterations = 6;
  expect_resume_equals_uninterrupted(x, d, options);
}

TEST(KMeansStop, ResumedRunEqualsUninterruptedInnerProduct) {
  const int d = 24;
  const std::vector<float> x = sf::testing::gaussian_mixture(2000, d, 12, 32);
  KMeansOptions options;
  options.k = 16;
  options.iterations = 5;
  options.inner_product = true;
  options.seed = 77;
  expect_resume_equals_uninterrupted(x, d, options);
}

TEST(KMeansStop, ResumedRunEqualsUninterruptedWithEmptyClusterSplits) {
  // Two distinct points, five copies each, four centroids: the split choice in each
  // iteration is seeded by the iteration number, which the state must carry.
  const int d = 3;
  std::vector<float> x;
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < d; ++j) x.push_back((i % 2 ? -2.0f : 1.0f) + 0.5f * j);
  KMeansOptions options;
  options.k = 4;
  options.iterations = 4;
  ASSERT_GT(run_serial(x, d, options).empty_clusters_split, 0);
  const KMeansResult straight = run_serial(x, d, options);
  for (int i = 0; i <= options.iterations; ++i) {
    const KMeansState state = stop_at_iteration(x, d, options, i);
    KMeansOptions resumed_options = options;
    resumed_options.resume = &state;
    const KMeansResult resumed = run_serial(x, d, resumed_options);
    EXPECT_TRUE(same_bits(resumed.centroids, straight.centroids)) << "stopped at " << i;
    EXPECT_EQ(resumed.empty_clusters_split, straight.empty_clusters_split) << "stopped at " << i;
  }
}

TEST(KMeansStop, ResumedRunMayBeStoppedAgain) {
  const int d = 8;
  const std::vector<float> x = sf::testing::gaussian_mixture(1500, d, 10, 33);
  KMeansOptions options;
  options.k = 12;
  options.iterations = 7;
  const KMeansResult straight = run_serial(x, d, options);
  const KMeansState first = stop_at_iteration(x, d, options, 2);
  KMeansOptions again = options;
  again.resume = &first;
  int checks = 0;
  again.stop_requested = [&] { return ++checks > 3; };  // 3 more iterations, then stop
  KMeansState second;
  try {
    run_serial(x, d, again);
    FAIL() << "not stopped";
  } catch (const KMeansStopped& stopped) {
    second = stopped.state();
  }
  EXPECT_EQ(second.iteration, 5);
  KMeansOptions last = options;
  last.resume = &second;
  EXPECT_TRUE(same_bits(run_serial(x, d, last).centroids, straight.centroids));
}

TEST(KMeansStop, StateThatDoesNotFitIsRejected) {
  const int d = 8;
  const std::vector<float> x = sf::testing::gaussian_mixture(500, d, 5, 34);
  KMeansOptions options;
  options.k = 6;
  options.iterations = 4;
  const KMeansState state = stop_at_iteration(x, d, options, 2);
  KMeansOptions other_k = options;
  other_k.k = 7;
  other_k.resume = &state;
  EXPECT_THROW(run_serial(x, d, other_k), std::invalid_argument);
  KMeansOptions fewer = options;
  fewer.iterations = 1;  // the state is past the last iteration
  fewer.resume = &state;
  EXPECT_THROW(run_serial(x, d, fewer), std::invalid_argument);
}

TEST(KMeansStateFormat, RoundTripsAndRejectsDamage) {
  KMeansState state;
  state.k = 3;
  state.d = 2;
  state.iteration = 2;
  state.centroids = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -0.0f};
  state.objective = {10.5, 7.25};
  state.empty_clusters_split = 4;
  const cluster::Bytes bytes = encode_kmeans_state(state);
  const KMeansState back = decode_kmeans_state(bytes);
  EXPECT_EQ(back.k, 3);
  EXPECT_EQ(back.d, 2);
  EXPECT_EQ(back.iteration, 2);
  EXPECT_EQ(back.empty_clusters_split, 4);
  EXPECT_TRUE(same_bits(back.centroids, state.centroids));
  EXPECT_EQ(back.objective, state.objective);

  cluster::Bytes truncated(bytes.begin(), bytes.end() - 1);
  EXPECT_THROW(decode_kmeans_state(truncated), std::runtime_error);
  cluster::Bytes header = bytes;
  header[0] = 'X';
  EXPECT_THROW(decode_kmeans_state(header), std::runtime_error);
  EXPECT_THROW(decode_kmeans_state({}), std::runtime_error);
  KMeansState lying = state;
  lying.iteration = 3;  // one objective value short
  EXPECT_THROW(decode_kmeans_state(encode_kmeans_state(lying)), std::runtime_error);
}

// The hand-packed SFKM format of earlier builds (format version 1), written here by hand:
// refused as a version this build does not read (the train stage then starts k-means afresh).
TEST(KMeansStateFormat, Version1SfkmIsRefusedNamingTheFormat) {
  cluster::Bytes v1 = {'S', 'F', 'K', 'M'};
  auto put = [&](const void* p, size_t n) {
    v1.insert(v1.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
  };
  const uint32_t version = 1;
  const int32_t header[4] = {1, 2, 1, 0};  // k, d, iteration, empty clusters split
  const float centroids[2] = {0.5f, -1.0f};
  const double objective[1] = {3.0};
  put(&version, sizeof(version));
  put(header, sizeof(header));
  put(centroids, sizeof(centroids));
  put(objective, sizeof(objective));
  try {
    decode_kmeans_state(v1);
    FAIL() << "an SFKM state was read";
  } catch (const cluster::ArchiveVersionError& e) {
    EXPECT_STREQ(e.what(),
                 "k-means state: format version 1 (SFKM), written by an older shardforge; "
                 "this build reads version 2");
  }
}

// A state from a newer build (its class version above this build's) is refused too.
struct NextKMeansState {
  KMeansState now;
  int32_t more = 7;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar & now.k & now.d & now.iteration & now.empty_clusters_split & now.centroids &
        now.objective & more;
  }
};

}  // namespace
}  // namespace sf::stages
BOOST_CLASS_VERSION(sf::stages::NextKMeansState, sf::stages::kKMeansStateFormatVersion + 1)
namespace sf::stages {
namespace {

TEST(KMeansStateFormat, NewerVersionIsRefused) {
  NextKMeansState next;
  next.now = {1, 2, 1, {0.5f, -1.0f}, {3.0}, 0};
  try {
    decode_kmeans_state(cluster::to_bytes(next));
    FAIL() << "a newer state was read";
  } catch (const cluster::ArchiveVersionError& e) {
    EXPECT_STREQ(e.what(),
                 "k-means state: format version 3, written by a newer "
                 "shardforge; this build reads version 2");
  }
}

}  // namespace
}  // namespace sf::stages
