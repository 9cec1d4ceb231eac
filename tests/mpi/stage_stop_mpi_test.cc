// MPI tests (1, 2 and 4 ranks) of the stop checks inside stages (stages/stop_request.h): a
// request on one rank only stops every rank together, with StageStopped, at the sharded
// search's round boundary and in the exact ground-truth scan; no rank is left in a collective.
#include <gtest/gtest.h>
#include <omp.h>

#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "io/index_file.h"
#include "io/vector_file.h"
#include "stages/eval.h"
#include "stages/ivf_index.h"
#include "stages/partition.h"
#include "stages/shard_search.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages {
namespace {

using sf::testing::world;

// Runs `call` (collective); returns "" when it threw StageStopped naming `phase`.
template <class Call>
std::string expect_stopped(Call call, const std::string& phase) {
  try {
    call();
    return "not stopped; ";
  } catch (const StageStopped& e) {
    return e.phase() == phase ? "" : "stopped in '" + e.phase() + "'; ";
  }
}

TEST(StageStop, ShardedSearchStopsOnEveryRankWhenOneIsAsked) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int d = 16;
  const int64_t rows = 3000, nq = 200;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 10, 81);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 10, 82);
  cluster::Bytes empty_bytes, full_bytes;
  if (comm.rank() == 0) {
    std::unique_ptr<faiss::Index> index = make_ivf_index(d, "IVF16,Flat", false);
    index->train(rows, x.data());
    empty_bytes = io::serialize_index(*index);
    std::vector<faiss::Index::idx_t> ids(rows);
    std::iota(ids.begin(), ids.end(), 0);
    index->add_with_ids(rows, x.data(), ids.data());
    full_bytes = io::serialize_index(*index);
  }
  comm.broadcast(empty_bytes, 0);
  comm.broadcast(full_bytes, 0);
  const std::unique_ptr<faiss::Index> merged = io::deserialize_index(full_bytes);
  PartitionOptions o;
  o.shards = 3;
  o.nprobe = 4;
  const PartitionPlan plan = make_plan(*merged, nullptr, o, ScanCost::linear(1e-6, 1e-8));
  std::map<int, std::unique_ptr<faiss::Index>> shards;
  for (int s = 0; s < plan.shards; ++s)
    if (shard_rank(s, comm.size()) == comm.rank())
      shards.emplace(s, make_shard_index(*merged, empty_bytes, plan, s));
  const cluster::RowRange slice = query_slice(nq, plan.shards, comm.rank(), comm.size());
  const std::vector<float> mine(q.begin() + slice.begin * d, q.begin() + slice.end * d);

  std::string problem;
  for (int stop_round : {0, 2}) {
    ShardSearchOptions opt;
    opt.batch_queries = 16;  // several rounds
    int checks = 0;
    const int asker = comm.size() - 1;
    opt.stop_requested = [&] { return comm.rank() == asker && ++checks > stop_round; };
    problem += expect_stopped(
        [&] { distributed_search(comm, plan, shards, mine.data(), nq, opt); }, "search");
  }
  // Without a request the same search runs to its end.
  ShardSearchOptions plain;
  plain.stop_requested = [] { return false; };
  if (distributed_search(comm, plan, shards, mine.data(), nq, plain).codes_scanned <= 0)
    problem += "the unstopped search scanned nothing; ";
  EXPECT_EQ(comm.sum(int64_t{1}), comm.size());  // still in step
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
}

TEST(StageStop, ExactScanStopsOnEveryRankWhenOneIsAsked) {
  omp_set_num_threads(1);
  cluster::Comm& comm = world();
  const int d = 8;
  const int64_t rows = 12000, nq = 20;  // >= 2 batches of 1024 rows per rank at 4 ranks
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 6, 83);
  const std::vector<float> q = sf::testing::gaussian_mixture(nq, d, 6, 84);
  sf::testing::SharedTempDir dir(comm);
  sf::testing::write_fvecs_on_rank0(comm, dir.file("x.fvecs"), x, rows, d);
  io::VectorCorpus corpus({dir.file("x.fvecs")}, io::VectorFormat::kFvecs);
  const cluster::RowRange range = cluster::row_range(rows, comm.rank(), comm.size());
  std::string problem;
  int batches = 0;
  const int asker = comm.size() - 1;
  const StopRequestFn on_second_batch = [&] { return comm.rank() == asker && ++batches > 1; };
  problem += expect_stopped(
      [&] {
        exact_neighbours(comm, corpus, range, q.data(), nq, 5, false, 1024, {}, on_second_batch);
      },
      "eval: exact neighbours");
  if (comm.rank() == asker && batches != 2) problem += "the asked rank did not leave its scan at once; ";
  const Neighbours full = exact_neighbours(comm, corpus, range, q.data(), nq, 5, false, 1024, {},
                                           [] { return false; });
  if (comm.rank() == 0 && full.ids != sf::testing::brute_force(x, d, q, 5, false))
    problem += "the unstopped scan is wrong; ";
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
}

}  // namespace
}  // namespace sf::stages
