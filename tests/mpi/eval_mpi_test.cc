// MPI tests of stages/eval.h: exact neighbours computed across the ranks equal a brute force
// over all rows (ties by the smaller id, also across ranks), and evaluate_index over the
// ranks scores a distributed IVF-Flat build exactly as one rank does.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/index_file.h"
#include "io/vector_file.h"
#include "stages/build.h"
#include "stages/eval.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/train.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages {
namespace {

using sf::testing::brute_force;

using sf::testing::SharedTempDir;
using sf::testing::world;


TEST(DistributedEval, ExactNeighboursEqualBruteForceOverAllRows) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int d = 24, k = 10;
  const int64_t rows = 3000, nq = 12;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 15, 61);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 15, 62);
  SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("x.fvecs"), x, rows, d);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  const cluster::RowRange range = cluster::row_range(rows, comm.rank(), comm.size());
  for (bool ip : {false, true}) {
    SCOPED_TRACE(ip ? "IP" : "L2");
    const Neighbours got = exact_neighbours(comm, corpus, range, q.data(), nq, k, ip, 200);
    if (comm.rank() != 0) continue;
    EXPECT_EQ(got.nq, nq);
    EXPECT_EQ(got.k, k);
    EXPECT_EQ(got.ids, brute_force(x, d, q, k, ip));
    // And exactly what one rank computes, distances included.
    auto serial = cluster::make_serial_comm();
    const Neighbours one =
        exact_neighbours(*serial, corpus, cluster::row_range(rows, 0, 1), q.data(), nq, k, ip, 200);
    EXPECT_EQ(got.ids, one.ids);
    EXPECT_EQ(got.distances, one.distances);
  }
}

TEST(DistributedEval, KLargerThanEachRanksShareOfRows) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  // 9 rows, k = 6: with 4 ranks each holds 2 or 3 rows, fewer than k.
  const int d = 8, k = 6;
  const int64_t rows = 9, nq = 4;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 3, 65);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 3, 66);
  SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("tiny.fvecs"), x, rows, d);
  io::VectorCorpus corpus({dir.file("tiny.fvecs")}, io::VectorFormat::kFvecs);
  const cluster::RowRange range = cluster::row_range(rows, comm.rank(), comm.size());
  for (int64_t batch : {int64_t{1}, int64_t{4}, int64_t{100}}) {
    const Neighbours got = exact_neighbours(comm, corpus, range, q.data(), nq, k, false, batch);
    if (comm.rank() == 0) {
      EXPECT_EQ(got.ids, brute_force(x, d, q, k, false)) << "batch_rows " << batch;
    }
  }
}

TEST(DistributedEval, TiesAcrossRanksGoToTheSmallerId) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  // Rows half..2*half-1 repeat rows 0..half-1, so with several ranks each pair of equal
  // distances is split between ranks; the earlier id must always come first.
  const int d = 16;
  const int64_t half = 600, nq = 8;
  std::vector<float> x = sf::testing::gaussian_mixture(half, d, 10, 71);
  x.insert(x.end(), x.begin(), x.end());
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 10, 72);
  SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("twice.fvecs"), x, 2 * half, d);
  io::VectorCorpus corpus({dir.file("twice.fvecs")}, io::VectorFormat::kFvecs);
  const cluster::RowRange range = cluster::row_range(2 * half, comm.rank(), comm.size());
  for (int k : {1, 3, 8}) {
    const Neighbours got = exact_neighbours(comm, corpus, range, q.data(), nq, k, false, 128);
    if (comm.rank() != 0) continue;
    // The expected list: the brute force over the first half, each id followed by its twin.
    const std::vector<int64_t> firsts =
        brute_force(std::vector<float>(x.begin(), x.begin() + half * d), d, q, (k + 1) / 2, false);
    for (int64_t i = 0; i < nq; ++i) {
      std::vector<int64_t> expected;
      for (int j = 0; j < (k + 1) / 2; ++j) {
        expected.push_back(firsts[i * ((k + 1) / 2) + j]);
        expected.push_back(firsts[i * ((k + 1) / 2) + j] + half);
      }
      expected.resize(static_cast<size_t>(k));
      const std::vector<int64_t> row(got.ids.begin() + i * k, got.ids.begin() + (i + 1) * k);
      EXPECT_EQ(row, expected) << "k " << k << " query " << i;
    }
  }
}

TEST(DistributedEval, IvfFlatRecallIsExactAtFullNprobeAndGrowsWithNprobe) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int d = 16, nlist = 16, k = 10;
  const int64_t rows = 4000, nq = 40;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 40, 81);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 40, 82);
  SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("x.fvecs"), x, rows, d);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  const cluster::RowRange range = cluster::row_range(rows, comm.rank(), comm.size());

  // The distributed build, then every rank gets a copy of the merged index.
  TrainOptions options;
  options.factory = "IVF" + std::to_string(nlist) + ",Flat";
  std::unique_ptr<faiss::Index> index = train_index(comm, corpus, range, options);
  cluster::run_local_phase(comm, "test: add", [&] { add_shard(*index, corpus, range, 500); });
  merge_shards(comm, *index);
  cluster::Bytes merged = comm.rank() == 0 ? io::serialize_index(*index) : cluster::Bytes{};
  comm.broadcast(merged, 0);
  index = io::deserialize_index(merged);
  EXPECT_EQ(index->ntotal, rows);

  const Neighbours truth = exact_neighbours(comm, corpus, range, q.data(), nq, k, false, 1000);
  const std::vector<int> nprobes = {1, 2, 4, 8, nlist};
  const std::vector<EvalPoint> points =
      evaluate_index(comm, *index, q.data(), nq, truth, k, nprobes);
  ASSERT_EQ(points.size(), nprobes.size());
  if (comm.rank() != 0) return;

  for (size_t i = 0; i < points.size(); ++i) {
    SCOPED_TRACE("nprobe " + std::to_string(nprobes[i]));
    EXPECT_EQ(points[i].nprobe, nprobes[i]);
    ASSERT_TRUE(points[i].recall_at_10.has_value());
    ASSERT_TRUE(points[i].recall_at_1.has_value());
    if (i > 0) {
      EXPECT_GE(*points[i].recall_at_10, *points[i - 1].recall_at_10);
      EXPECT_GE(*points[i].recall_at_1, *points[i - 1].recall_at_1);
    }
  }
  EXPECT_DOUBLE_EQ(*points.back().recall_at_10, 1.0);
  EXPECT_DOUBLE_EQ(*points.back().recall_at_1, 1.0);
  EXPECT_LT(*points.front().recall_at_10, 1.0) << "one probe should miss some neighbours";

  // Splitting the queries over the ranks changes nothing in the scores.
  auto serial = cluster::make_serial_comm();
  const std::vector<EvalPoint> one =
      evaluate_index(*serial, *index, q.data(), nq, truth, k, nprobes);
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(points[i].recall_at_1, one[i].recall_at_1) << "nprobe " << nprobes[i];
    EXPECT_EQ(points[i].recall_at_10, one[i].recall_at_10) << "nprobe " << nprobes[i];
    EXPECT_EQ(points[i].recall_at_100, one[i].recall_at_100) << "nprobe " << nprobes[i];
  }
}

}  // namespace
}  // namespace sf::stages
