// MPI tests of stages/kmeans.h: each rank passes its contiguous part (rank_rows) of one
// sample, and the centroids must be bit-identical to a one-thread SerialComm run over the whole
// sample on every rank, for L2, inner product, more threads, ranks holding nothing, and
// empty-cluster splits.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "stages/batches.h"
#include "stages/kmeans.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages {
namespace {

using sf::testing::world;

// Rows `ids` of x (d floats each), in order.
std::vector<float> select_rows(const std::vector<float>& x, int d,
                               const std::vector<int64_t>& ids) {
  std::vector<float> out;
  out.reserve(ids.size() * d);
  for (int64_t id : ids) out.insert(out.end(), x.begin() + id * d, x.begin() + (id + 1) * d);
  return out;
}

// Runs k-means on `sample` split over the ranks (with the caller's OpenMP threads) and on one
// rank with one thread; both must agree bit for bit.
void expect_distributed_equals_serial(const std::vector<float>& sample, int d,
                                      const KMeansOptions& options) {
  cluster::Comm& comm = world();
  const int64_t n_total = static_cast<int64_t>(sample.size()) / d;
  const cluster::RowRange part = stages::rank_rows(n_total, comm.rank(), comm.size());
  const KMeansResult distributed = distributed_kmeans(comm, sample.data() + part.begin * d,
                                                      part.size(), part.begin, n_total, d, options);
  auto serial_comm = cluster::make_serial_comm();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const KMeansResult serial =
      distributed_kmeans(*serial_comm, sample.data(), n_total, 0, n_total, d, options);
  omp_set_num_threads(threads);

  std::string problem;
  if (distributed.centroids.size() != serial.centroids.size()) {
    problem = "centroid counts differ";
  } else if (std::memcmp(distributed.centroids.data(), serial.centroids.data(),
                         serial.centroids.size() * sizeof(float)) != 0) {
    size_t first = 0;
    while (distributed.centroids[first] == serial.centroids[first]) ++first;
    problem = "centroids differ from the single-rank run, first at float " + std::to_string(first) +
              ": " + std::to_string(distributed.centroids[first]) + " vs " +
              std::to_string(serial.centroids[first]);
  }
  if (distributed.empty_clusters_split != serial.empty_clusters_split)
    problem += " splits " + std::to_string(distributed.empty_clusters_split) + " vs " +
               std::to_string(serial.empty_clusters_split);
  if (distributed.objective.size() != serial.objective.size()) {
    problem += " objective lengths differ";
  } else {
    // The objective too is summed in global block order: bit-identical.
    for (size_t i = 0; i < serial.objective.size(); ++i)
      if (distributed.objective[i] != serial.objective[i])
        problem += " objective[" + std::to_string(i) + "] " +
                   std::to_string(distributed.objective[i]) + " vs " +
                   std::to_string(serial.objective[i]);
  }
  // And every rank holds the same centroids as rank 0.
  const auto* raw = reinterpret_cast<const char*>(distributed.centroids.data());
  const std::vector<cluster::Bytes> all =
      comm.allgather(cluster::Bytes(raw, raw + distributed.centroids.size() * sizeof(float)));
  if (all[comm.rank()] != all[0]) problem += " centroids differ from rank 0's";

  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

TEST(DistributedKMeans, CentroidsBitIdenticalToSingleRankL2) {
  omp_set_num_threads(1);
  const int d = 16;
  // The sample: 2000 of 5000 rows, chosen as train.cc does (sorted global ids).
  const std::vector<float> x = sf::testing::gaussian_mixture(5000, d, 30, 101);
  const std::vector<float> sample = select_rows(x, d, choose_sample(5000, 2000, 7));
  KMeansOptions options;
  options.k = 24;
  options.iterations = 8;
  expect_distributed_equals_serial(sample, d, options);
}

TEST(DistributedKMeans, CentroidsBitIdenticalToSingleRankInnerProduct) {
  omp_set_num_threads(1);
  const int d = 32;
  const std::vector<float> sample = sf::testing::gaussian_mixture(2500, d, 20, 102);
  KMeansOptions options;
  options.k = 16;
  options.iterations = 6;
  options.inner_product = true;
  options.seed = 99;
  expect_distributed_equals_serial(sample, d, options);
}

TEST(DistributedKMeans, CentroidsBitIdenticalWithMoreThreadsPerRank) {
  // The per-rank assignment may be split among OpenMP threads; the result must be the
  // single-thread, single-rank one. 4000 rows are 4 blocks: at 4 ranks each rank holds one
  // (a team of one thread, BLAS once split its GEMM), at 2 ranks two, at 1 rank four.
  const int d = 16;
  const std::vector<float> sample = sf::testing::gaussian_mixture(4000, d, 25, 103);
  KMeansOptions options;
  options.k = 20;
  options.iterations = 5;
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(3);
  expect_distributed_equals_serial(sample, d, options);
  omp_set_num_threads(saved_threads);
}

TEST(DistributedKMeans, RanksHoldingNoSamplePointsStillAgree) {
  omp_set_num_threads(1);
  // Three points for up to four ranks: the last rank's part is empty.
  const int d = 4;
  const std::vector<float> sample = sf::testing::gaussian_mixture(3, d, 3, 104);
  KMeansOptions options;
  options.k = 2;
  options.iterations = 3;
  expect_distributed_equals_serial(sample, d, options);
}

TEST(DistributedKMeans, EmptyClusterSplitsMatchSingleRank) {
  omp_set_num_threads(1);
  // Two distinct points, five copies each, four centroids: clusters start empty and are
  // split by the seeded choice, which must be the same on every rank.
  const int d = 3;
  std::vector<float> sample;
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < d; ++j) sample.push_back((i % 2 ? -2.0f : 1.0f) + 0.5f * j);
  KMeansOptions options;
  options.k = 4;
  options.iterations = 4;
  expect_distributed_equals_serial(sample, d, options);
  auto serial = cluster::make_serial_comm();
  EXPECT_GT(distributed_kmeans(*serial, sample.data(), 10, 0, 10, d, options).empty_clusters_split,
            0)
      << "the data no longer exercises the split";
}

TEST(DistributedKMeans, FewerPointsThanCentroidsThrowsOnEveryRank) {
  cluster::Comm& comm = world();
  const int d = 4;
  const std::vector<float> sample = sf::testing::gaussian_mixture(10, d, 2, 105);
  const cluster::RowRange part = stages::rank_rows(10, comm.rank(), comm.size());
  KMeansOptions options;
  options.k = 11;
  EXPECT_THROW(distributed_kmeans(comm, sample.data() + part.begin * d, part.size(), part.begin, 10,
                                  d, options),
               std::invalid_argument);
  // The ranks are still in step.
  EXPECT_EQ(comm.sum(int64_t{1}), comm.size());
}

// Stopped by a request on one rank only before iteration `stop_at`: every rank throws
// KMeansStopped with the same state, and resuming from it (on these ranks, or from a
// single-rank run's state) gives the uninterrupted single-rank centroids bit for bit.
TEST(DistributedKMeans, StoppedOnOneRankAndResumedEqualsUninterrupted) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int d = 16;
  const std::vector<float> x = sf::testing::gaussian_mixture(5000, d, 30, 106);
  const std::vector<float> sample = select_rows(x, d, choose_sample(5000, 3000, 9));
  const int64_t n_total = static_cast<int64_t>(sample.size()) / d;
  const cluster::RowRange part = stages::rank_rows(n_total, comm.rank(), comm.size());
  KMeansOptions options;
  options.k = 20;
  options.iterations = 6;
  auto serial = cluster::make_serial_comm();
  const KMeansResult straight =
      distributed_kmeans(*serial, sample.data(), n_total, 0, n_total, d, options);
  auto bits = [](const std::vector<float>& v) {
    const auto* raw = reinterpret_cast<const char*>(v.data());
    return cluster::Bytes(raw, raw + v.size() * sizeof(float));
  };
  std::string problem;
  for (int stop_at : {0, 2, 5, 6}) {
    const std::string at = "stopped before iteration " + std::to_string(stop_at) + ": ";
    KMeansOptions stopping = options;
    int checks = 0;
    const int asker = comm.size() - 1;  // only this rank gets the "signal"
    stopping.stop_requested = [&] { return comm.rank() == asker && ++checks > stop_at; };
    std::optional<KMeansState> state;
    try {
      distributed_kmeans(comm, sample.data() + part.begin * d, part.size(), part.begin, n_total, d,
                         stopping);
      problem += at + "not stopped; ";
    } catch (const KMeansStopped& stopped) {
      state = stopped.state();
    }
    if (!state) continue;
    if (state->iteration != stop_at) problem += at + "state after iteration " + std::to_string(state->iteration) + "; ";
    const std::vector<cluster::Bytes> all = comm.allgather(encode_kmeans_state(*state));
    if (all[comm.rank()] != all[0]) problem += at + "states differ between ranks; ";
    const KMeansState saved = decode_kmeans_state(all[0]);
    KMeansOptions resumed = options;
    resumed.resume = &saved;
    const KMeansResult r = distributed_kmeans(comm, sample.data() + part.begin * d, part.size(),
                                              part.begin, n_total, d, resumed);
    if (bits(r.centroids) != bits(straight.centroids)) problem += at + "resumed centroids differ; ";
    if (r.objective != straight.objective) problem += at + "resumed objective differs; ";
    // The state does not depend on the rank count: a single-rank run's state resumes here too.
    KMeansOptions serial_stopping = options;
    int serial_checks = 0;
    serial_stopping.stop_requested = [&] { return ++serial_checks > stop_at; };
    try {
      distributed_kmeans(*serial, sample.data(), n_total, 0, n_total, d, serial_stopping);
    } catch (const KMeansStopped& stopped) {
      if (encode_kmeans_state(stopped.state()) != all[0])
        problem += at + "the single-rank state differs; ";
    }
  }
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

}  // namespace
}  // namespace sf::stages
