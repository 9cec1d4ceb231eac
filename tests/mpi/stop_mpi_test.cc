// MPI tests (1, 2 and 4 ranks) of stopping together: agree_or_stop() and runtime::run_step()
// turn one rank's stop request (a SIGTERM) into the same decision on every rank, and a
// failure anywhere wins over a stop.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "cluster/comm.h"
#include "runtime/stop.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::runtime {
namespace {

using sf::testing::problems_on_any_rank;
using sf::testing::world;

TEST(MpiAgreeOrStop, OneRankStoppingStopsEveryRank) {
  cluster::Comm& comm = world();
  std::string problem;
  for (int stopper = 0; stopper < comm.size(); ++stopper) {
    if (!cluster::agree_or_stop(comm, "add", nullptr, comm.rank() == stopper))
      problem += "rank " + std::to_string(stopper) + " stopping did not stop this rank; ";
  }
  if (cluster::agree_or_stop(comm, "add", nullptr, false)) problem += "stopped with no request; ";
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

TEST(MpiAgreeOrStop, FailureWinsOverStop) {
  cluster::Comm& comm = world();
  const int failing = comm.size() - 1;
  std::exception_ptr error;
  if (comm.rank() == failing) error = std::make_exception_ptr(std::runtime_error("bad piece"));
  std::string problem;
  try {
    cluster::agree_or_stop(comm, "add", error, /*stop=*/comm.rank() == 0);
    problem = "no throw";
  } catch (const cluster::PhaseError& e) {
    if (e.failed_rank() != failing || e.detail() != "bad piece") problem = e.what();
  }
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

TEST(MpiRunStep, SignalOnTheLastRankStopsEveryRankAfterItsWork) {
  cluster::Comm& comm = world();
  int calls = 0;
  std::string problem;
  set_stop_requested(comm.rank() == comm.size() - 1);
  try {
    run_step(comm, "add", [&] { ++calls; });
    problem = "no Stopped";
  } catch (const Stopped& e) {
    if (e.stage() != "add") problem = "stage '" + e.stage() + "'";
  }
  set_stop_requested(false);
  if (calls != 1) problem += " work ran " + std::to_string(calls) + " times";
  // And with no request the next step runs normally on every rank.
  try {
    run_step(comm, "add", [&] { ++calls; });
  } catch (const std::exception& e) {
    problem += std::string(" second step threw: ") + e.what();
  }
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

}  // namespace
}  // namespace sf::runtime
