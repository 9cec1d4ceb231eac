// runtime/stop.h on one process: a signal sets the stop flag (and does not kill), run_step
// turns it into Stopped, status.json records where a run is and how it ended.
#include "runtime/stop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace sf::runtime {
namespace {

TEST(StopSignal, SigtermSetsTheFlagAndRunStepStops) {
  auto comm = cluster::make_serial_comm();
  install_stop_handlers(0, 1);
  set_stop_requested(false);
  EXPECT_NO_THROW(run_step(*comm, "add", [] {}));
  std::raise(SIGTERM);  // the handler keeps the process alive
  EXPECT_TRUE(stop_requested());
  int calls = 0;
  EXPECT_THROW(run_step(*comm, "add", [&] { ++calls; }), Stopped);
  EXPECT_EQ(calls, 1) << "the step's work runs before the stop";
  set_stop_requested(false);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGUSR1, SIG_DFL);
}

TEST(StopSignal, FailureInTheStepWinsOverAStop) {
  auto comm = cluster::make_serial_comm();
  set_stop_requested(true);
  EXPECT_THROW(run_step(*comm, "add", [] { throw std::runtime_error("disk full"); }),
               cluster::PhaseError);
  set_stop_requested(false);
}

TEST(RunStatus, RecordsStageAndOutcomeAndDescribesThem) {
  testing::TempDir dir;
  EXPECT_EQ(describe_previous_run(dir.path()), "");
  start_run_status(dir.path(), "build", 0, 2);
  enter_stage("add");
  EXPECT_EQ(current_stage(), "add");
  std::string text = describe_previous_run(dir.path());
  EXPECT_NE(text.find("did not finish: it was in stage 'add'"), std::string::npos) << text;
  finish_run_status("stopped", "stopped by a signal during add");
  text = describe_previous_run(dir.path());
  EXPECT_NE(text.find("stopped in stage 'add': stopped by a signal"), std::string::npos) << text;
  finish_run_status("done");
  EXPECT_NE(describe_previous_run(dir.path()).find("finished"), std::string::npos);
  // Only rank 0 writes.
  testing::TempDir other;
  start_run_status(other.path(), "build", 1, 2);
  enter_stage("train");
  EXPECT_FALSE(std::filesystem::exists(other.file("status.json")));
}

}  // namespace
}  // namespace sf::runtime
