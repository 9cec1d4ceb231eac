// GoogleTest main for tests run under mpirun: MPI is initialised once, only rank 0 prints
// the test listing, and the exit code is agreed across ranks (any failure fails all).
#include <gtest/gtest.h>

#include "cluster/comm.h"
#include "tests/mpi/mpi_env.h"

namespace sf::testing {
cluster::Comm* g_world = nullptr;
cluster::Comm& world() { return *g_world; }
}  // namespace sf::testing

int main(int argc, char** argv) {
  sf::cluster::MpiSession mpi(&argc, &argv);
  sf::testing::g_world = &mpi.world();
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.world().rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int local = RUN_ALL_TESTS();
  const int64_t failed = mpi.world().sum(static_cast<int64_t>(local != 0));
  return failed == 0 ? 0 : 1;
}
