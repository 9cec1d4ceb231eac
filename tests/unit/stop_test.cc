// runtime/stop.h on one process: a signal sets the stop flag (and does not kill), run_step
// turns it into Stopped, status.json records where a run is and how it ended.
#include "runtime/stop.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/run_lock.h"
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

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(RunStatus, RecordsStageAndOutcomeAndDescribesThem) {
  testing::TempDir dir;
  EXPECT_EQ(describe_previous_run(dir.path()), "");
  start_run_status(dir.path(), "build", 0, 2);
  plan_stages({"train", "add", "merge"});
  enter_stage("add");
  EXPECT_EQ(current_stage(), "add");
  EXPECT_EQ(read_json_file(dir.file("status.json"))["stages"],
            nlohmann::json({"train", "add", "merge"}));
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


TEST(RunStatus, RecordsHostPidSlurmJobAndTheFailedRank) {
  testing::TempDir dir;
  ::setenv("SLURM_JOB_ID", "4242", 1);
  start_run_status(dir.path(), "build", 0, 2);
  ::unsetenv("SLURM_JOB_ID");
  enter_stage("train");
  nlohmann::json status = read_json_file(dir.file("status.json"));
  EXPECT_EQ(status["slurm_job_id"], "4242");
  EXPECT_EQ(status["host"], host_name());
  EXPECT_EQ(status["pid"], ::getpid());
  EXPECT_EQ(status["pid_start_ticks"], process_start_ticks(::getpid()));
  EXPECT_EQ(status["error_rank"], -1);
  EXPECT_FALSE(status["stage_started"].get<std::string>().empty());
  finish_run_status("failed", "train failed on rank 1: disk full", 1);
  status = read_json_file(dir.file("status.json"));
  EXPECT_EQ(status["state"], "failed");
  EXPECT_EQ(status["error_rank"], 1);
}

TEST(RunStatus, RecordsProgressPerRankAtMostOnceASecondPerStep) {
  testing::TempDir dir;
  start_run_status(dir.path(), "build", 1, 2);
  record_progress("build: add", 1, 100);  // no .shardforge/: not a run directory yet
  EXPECT_FALSE(std::filesystem::exists(dir.file(".shardforge")));
  std::filesystem::create_directories(dir.file(".shardforge"));
  enter_stage("add");
  record_progress("build: add", 10, 100);  // a new step (in a new stage): recorded at once
  auto latest = [&] {
    nlohmann::json best;
    for (int slot : {0, 1})
      if (std::filesystem::exists(progress_path(dir.path(), 1, slot))) {
        nlohmann::json r = read_json_file(progress_path(dir.path(), 1, slot));
        if (best.is_null() || r["seq"] > best["seq"]) best = r;
      }
    return best;
  };
  nlohmann::json record = latest();
  EXPECT_EQ(record["rank"], 1);
  EXPECT_EQ(record["stage"], "add");
  EXPECT_EQ(record["step"], "build: add");
  EXPECT_EQ(record["done"], 10);
  EXPECT_EQ(record["total"], 100);
  EXPECT_EQ(record["first_done"], 10);
  const int64_t seq = record["seq"];
  record_progress("build: add", 20, 100);  // within a second: not written
  EXPECT_EQ(latest()["done"], 10);
  record_progress("build: merge", 1, 5);  // another step: at once, in the other slot
  record = latest();
  EXPECT_EQ(record["step"], "build: merge");
  EXPECT_EQ(record["seq"], seq + 1);
  EXPECT_TRUE(std::filesystem::exists(progress_path(dir.path(), 1, 0)));
  EXPECT_TRUE(std::filesystem::exists(progress_path(dir.path(), 1, 1)));
  EXPECT_FALSE(std::filesystem::exists(dir.file("status.json"))) << "rank 1 writes no status.json";
}

}  // namespace
}  // namespace sf::runtime
