// The MPI world for tests run under mpirun (set up by mpi_main.cc).
#pragma once

#include "cluster/comm.h"

namespace sf::testing {
cluster::Comm& world();
}  // namespace sf::testing
