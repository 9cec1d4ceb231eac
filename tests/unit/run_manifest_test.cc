// runtime/run_lock.h and runtime/run_manifest.h on one process: the output.dir lock, the
// manifest of what shardforge made, and removal that leaves a user's files alone (issue 12).
#include "runtime/run_manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/checkpoint.h"
#include "runtime/run_lock.h"
#include "tests/test_util.h"

namespace sf::runtime {
namespace {

namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

void write_lock(const std::string& dir, const std::string& host, long pid, long long ticks) {
  write(dir + "/.shardforge/lock", "{\"format_version\": 1, \"host\": \"" + host +
                                       "\", \"pid\": " + std::to_string(pid) +
                                       ", \"pid_start_ticks\": " + std::to_string(ticks) +
                                       ", \"command\": \"build\", \"ranks\": 2}\n");
}

TEST(RunLock, ASecondLockIsRefusedNamingTheHolderAndFreedAfterwards) {
  sf::testing::TempDir dir;
  fs::create_directories(dir.file(".shardforge"));
  {
    const RunLock first(dir.path(), "build", 2);
    EXPECT_TRUE(fs::exists(dir.file(".shardforge/lock")));
    try {
      const RunLock second(dir.path(), "dedup", 1);
      FAIL() << "a second lock was taken";
    } catch (const RunDirBusy& e) {
      EXPECT_NE(std::string(e.what()).find("`build` (pid " + std::to_string(::getpid())),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(dir.file(".shardforge/lock")));
  EXPECT_NO_THROW(RunLock(dir.path(), "dedup", 1));
}

TEST(RunLock, StaleLocksOfThisHostAreTakenOverOthersAreNot) {
  sf::testing::TempDir dir;
  const long long my_ticks = process_start_ticks(::getpid());
  ASSERT_GT(my_ticks, 0);
  write_lock(dir.path(), host_name(), ::getpid(), my_ticks + 1);  // the pid was reused
  EXPECT_NO_THROW(RunLock(dir.path(), "build", 1));
  write_lock(dir.path(), host_name(), 0x3fffffff, 1);  // no such process
  EXPECT_NO_THROW(RunLock(dir.path(), "build", 1));
  write_lock(dir.path(), "node-elsewhere", 4242, 1);
  EXPECT_THROW(RunLock(dir.path(), "build", 1), RunDirBusy);
  EXPECT_TRUE(fs::exists(dir.file(".shardforge/lock"))) << "another host's lock was removed";
  write(dir.file(".shardforge/lock"), "not json");
  EXPECT_THROW(RunLock(dir.path(), "build", 1), RunDirBusy);
}

TEST(RunLock, ARequeuedSlurmJobTakesOverItsEarlierRunsLock) {
  sf::testing::TempDir dir;
  write(dir.file(".shardforge/lock"),
        "{\"format_version\": 1, \"host\": \"node-lost\", \"pid\": 4242, \"command\": "
        "\"build\", \"slurm_job_id\": \"777\", \"slurm_restart_count\": \"\"}\n");
  ::setenv("SLURM_JOB_ID", "778", 1);
  EXPECT_THROW(RunLock(dir.path(), "build", 1), RunDirBusy) << "another job's lock";
  ::setenv("SLURM_JOB_ID", "777", 1);
  ::setenv("SLURM_RESTART_COUNT", "1", 1);
  EXPECT_NO_THROW(RunLock(dir.path(), "build", 1));
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_RESTART_COUNT");
}

TEST(RunManifest, ClaimRefusesWhatShardforgeDidNotMake) {
  sf::testing::TempDir dir;
  write(dir.file("index.faiss"), "the user's own");
  RunManifest m = RunManifest::load(dir.path());
  EXPECT_FALSE(m.exists());
  EXPECT_NE(m.claim({"eval.json", "index.faiss"}).find("index.faiss exists"), std::string::npos);
  EXPECT_FALSE(m.owns("eval.json")) << "a refused claim claims nothing";
  EXPECT_EQ(m.claim({"eval.json", "kept"}), "");
  m.set_command("dedup");
  m.save();
  const RunManifest again = RunManifest::load(dir.path());
  EXPECT_EQ(again.command(), "dedup");
  EXPECT_TRUE(again.owns("kept"));
  EXPECT_TRUE(again.owns("kept/part-00003.jsonl"));
  EXPECT_FALSE(again.owns("kept/notes.txt"));
  EXPECT_FALSE(again.owns("index.faiss"));
}

TEST(RunManifest, RemoveTakesOnlyShardforgeFiles) {
  sf::testing::TempDir dir;
  RunManifest m = RunManifest::load(dir.path());
  ASSERT_EQ(m.claim({"kept", "pieces", "dedup.json"}), "");
  m.save();
  write(dir.file("kept/part-00000.jsonl"), "x");
  write(dir.file("kept/part-00001.jsonl.tmp.123"), "x");
  write(dir.file("kept/notes.txt"), "mine");
  write(dir.file("pieces/rows-000000000000-000000001024.sfsh"), "x");
  write(dir.file("dedup.json"), "{}");
  write(dir.file("dedup.json.tmp.77"), "{");
  write(dir.file("notes.txt"), "mine");
  write(dir.file("duplicates.jsonl"), "not claimed");
  m.remove("kept");
  m.remove("pieces");
  m.remove("dedup.json");
  m.remove("duplicates.jsonl");
  m.remove("notes.txt");
  EXPECT_FALSE(fs::exists(dir.file("kept/part-00000.jsonl")));
  EXPECT_FALSE(fs::exists(dir.file("kept/part-00001.jsonl.tmp.123")));
  EXPECT_TRUE(fs::exists(dir.file("kept/notes.txt")));
  EXPECT_FALSE(fs::exists(dir.file("pieces"))) << "a claimed folder left empty goes";
  EXPECT_FALSE(fs::exists(dir.file("dedup.json")));
  EXPECT_FALSE(fs::exists(dir.file("dedup.json.tmp.77")));
  EXPECT_TRUE(fs::exists(dir.file("notes.txt")));
  EXPECT_TRUE(fs::exists(dir.file("duplicates.jsonl")));
}

TEST(RunManifest, InputsInsideWhatTheRunReplacesAreNamed) {
  sf::testing::TempDir dir;
  Config config;
  config.source = "c.yaml";
  config.output.dir = dir.path();
  config.input.paths = {dir.file("mine.jsonl")};
  EXPECT_EQ(input_inside(config, "dedup", {"kept", "duplicates.jsonl"}), "");
  config.input.paths.push_back(dir.file("kept/part-00000.jsonl"));
  EXPECT_NE(input_inside(config, "dedup", {"kept", "duplicates.jsonl"})
                .find("input.paths: " + dir.file("kept/part-00000.jsonl") + " lies inside"),
            std::string::npos);
  config.input.paths = {dir.file("a.fvecs")};
  config.eval.queries = dir.file("pieces/q.fvecs");
  EXPECT_NE(input_inside(config, "build", {"pieces"}).find("eval.queries"), std::string::npos);
}

TEST(Checkpoints, ForgetAllLeavesOtherFiles) {
  sf::testing::TempDir dir;
  const Checkpoints cp(dir.path());
  write(dir.file("x.bin"), "x");
  cp.mark_complete(Fingerprint("add/rows-1"), {"x.bin"});
  cp.mark_complete(Fingerprint("train"), {"x.bin"});
  write(dir.file("checkpoints/README.txt"), "mine");
  cp.forget_all();
  EXPECT_EQ(cp.verify(Fingerprint("train")), Checkpoints::kNoMarker);
  EXPECT_FALSE(fs::exists(dir.file("checkpoints/add")));
  EXPECT_TRUE(fs::exists(dir.file("checkpoints/README.txt")));
}

}  // namespace
}  // namespace sf::runtime
