// MPI test (1, 2 and 4 ranks) of agree_input_files: every rank expands input.paths itself, and
// a rank that found other files stops every rank with the same ConfigError.
#include <gtest/gtest.h>

#include <string>

#include "runtime/config.h"
#include "runtime/run_manifest.h"
#include "tests/mpi/mpi_env.h"

namespace sf::runtime {
namespace {

using sf::testing::world;

TEST(MpiInputFiles, SameListsAgree) {
  Config config;
  config.input.paths = {"corpus/a.jsonl", "corpus/b.jsonl"};
  EXPECT_NO_THROW(agree_input_files(world(), config));
}

TEST(MpiInputFiles, ADifferentListOnOneRankIsAConfigErrorOnEveryRank) {
  cluster::Comm& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Config config;
  config.source = "job.yaml";
  config.input.paths = {"corpus/a.jsonl", "corpus/b.jsonl"};
  if (comm.rank() == comm.size() - 1) config.input.paths.pop_back();
  std::string message;
  try {
    agree_input_files(comm, config);
  } catch (const ConfigError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("job.yaml: input.paths: 1 rank(s) found other files than rank 0"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace sf::runtime
