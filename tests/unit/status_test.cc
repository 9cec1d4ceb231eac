// commands/status.h: the report `shardforge status` makes from what it read in a run directory
// (status.json, run.json, markers, progress records), as plain functions of that content.
#include "commands/status.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace sf::commands {
namespace {

using nlohmann::json;

StatusFacts build_facts(const std::string& state, const std::string& stage) {
  StatusFacts facts;
  facts.dir = "runs/x";
  facts.status = {{"format_version", 1},
                  {"command", "build"},
                  {"stage", stage},
                  {"state", state},
                  {"message", ""},
                  {"error_rank", -1},
                  {"ranks", 2},
                  {"pid", 123},
                  {"host", "node1"},
                  {"slurm_job_id", "77"},
                  {"started", "2026-12-05T01:00:00Z"},
                  {"stage_started", "2026-12-05T01:00:10Z"},
                  {"updated", "2026-12-05T01:00:10Z"}};
  facts.stages = {"open", "train", "partition", "add", "merge"};
  facts.process = RunProcess::kAlive;
  facts.now = parse_utc_text("2026-12-05T01:00:30Z");
  return facts;
}

std::vector<std::string> stage_states(const json& report) {
  std::vector<std::string> states;
  for (const json& s : report["stages"]) states.push_back(s["state"]);
  return states;
}

TEST(StatusStages, ThePlanInStatusJsonElseTheStagesRunJsonRecorded) {
  const json run = {{"commands",
                     {{"dedup", {{"stages", {{{"name", "read+sketch"}}, {{"name", "exact"}}}}}}}}};
  // status.json's plan wins (the runner wrote it before the first stage).
  EXPECT_EQ(planned_stages({{"stages", {"open", "train", "merge"}}}, run, "dedup"),
            (std::vector<std::string>{"open", "train", "merge"}));
  // An older run's status.json without a plan: run.json's stages of that command, in order.
  EXPECT_EQ(planned_stages({{"command", "dedup"}}, run, "dedup"),
            (std::vector<std::string>{"read+sketch", "exact"}));
  EXPECT_TRUE(planned_stages(nullptr, run, "build").empty());
  EXPECT_TRUE(planned_stages(nullptr, nullptr, "build").empty());
}

TEST(StatusTime, ParsesTheUtcTextOfStatusJson) {
  EXPECT_EQ(parse_utc_text("1970-01-01T00:01:40Z"), 100);
  EXPECT_EQ(parse_utc_text("yesterday"), -1);
}

TEST(StatusReport, DoneListsEveryStageWithItsFiguresPerRank) {
  StatusFacts facts = build_facts("done", "merge");
  facts.run = {
      {"commands",
       {{"build",
         {{"stages",
           {{{"name", "train"}, {"seconds", {1.5, 1.6}}, {"peak_rss_mib", {10, 11}}}}}}}}}};
  facts.markers["merge"] = "verified (sizes)";
  const json r = status_report(facts);
  EXPECT_EQ(r["state"], "done");
  EXPECT_EQ(stage_states(r), std::vector<std::string>(5, "done"));
  EXPECT_EQ(r["stages"][1]["seconds"], json({1.5, 1.6}));
  EXPECT_EQ(r["stages"][4]["marker"], "verified (sizes)");
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_EQ(r["slurm"]["job_id"], "77");
  const std::string text = format_status(r);
  EXPECT_NE(text.find("  train         done  (per rank: seconds 1.50 1.60; peak MiB 10.0 11.0)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("slurm job      77: state unknown"), std::string::npos) << text;
}

TEST(StatusReport, RunningShowsTheStageAndTheRanksProgressWithAnEta) {
  StatusFacts facts = build_facts("running", "add");
  const double t0 = static_cast<double>(parse_utc_text("2026-12-05T01:00:20Z"));
  facts.progress = {
      {{"rank", 1},
       {"stage", "add"},
       {"step", "build: add"},
       {"done", 60},
       {"total", 100},
       {"first_done", 10},
       {"step_started", t0},
       {"updated", t0 + 5}},
      {{"rank", 0},
       {"seq", 7},
       {"stage", "add"},
       {"step", "build: add"},
       {"done", 50},
       {"total", 100},
       {"first_done", 0},
       {"step_started", t0},
       {"updated", t0 + 10}},
      // Rank 0's other slot: an older record (lower seq), and a slot read while being written.
      {{"rank", 0},
       {"seq", 6},
       {"stage", "add"},
       {"step", "build: add"},
       {"done", 45},
       {"total", 100},
       {"first_done", 0},
       {"step_started", t0},
       {"updated", t0 + 9}},
      nullptr,
      // An earlier run's record of the same stage, and one of another stage: left out.
      {{"rank", 2},
       {"stage", "add"},
       {"step", "build: add"},
       {"done", 1},
       {"total", 100},
       {"step_started", t0 - 100},
       {"updated", t0 - 90}},
      {{"rank", 3},
       {"stage", "train"},
       {"step", "train: k-means"},
       {"done", 1},
       {"total", 10},
       {"step_started", t0},
       {"updated", t0 + 1}}};
  const json r = status_report(facts);
  EXPECT_EQ(r["state"], "running");
  EXPECT_EQ(stage_states(r),
            (std::vector<std::string>{"done", "done", "done", "running", "not started"}));
  ASSERT_EQ(r["progress"].size(), 2u);
  EXPECT_EQ(r["progress"][0]["rank"], 0);
  EXPECT_DOUBLE_EQ(r["progress"][0]["rate"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(r["progress"][0]["eta_seconds"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(r["progress"][1]["rate"].get<double>(), 10.0);  // (60 - 10) / 5 s
  EXPECT_DOUBLE_EQ(r["progress"][1]["eta_seconds"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(r["progress"][0]["age_seconds"].get<double>(), 0.0);
  const std::string text = format_status(r);
  EXPECT_NE(text.find("state          running in stage 'add' since 2026-12-05T01:00:10Z"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("rank 0    build: add: 50/100 (50.0%), 5/s, ETA 10.0s"), std::string::npos)
      << text;
}

TEST(StatusReport, RunningWhosePidIsGoneEndedWithoutAWord) {
  StatusFacts facts = build_facts("running", "train");
  facts.process = RunProcess::kGone;
  const json r = status_report(facts);
  EXPECT_EQ(r["state"], "killed");
  EXPECT_EQ(stage_states(r), (std::vector<std::string>{"done", "killed", "not started",
                                                       "not started", "not started"}));
  EXPECT_NE(r["state_text"].get<std::string>().find("ended without a word (killed?)"),
            std::string::npos);
  facts.process = RunProcess::kElsewhere;
  EXPECT_EQ(status_report(facts)["state"], "running");
  EXPECT_NE(status_report(facts)["state_text"].get<std::string>().find("on host node1"),
            std::string::npos);
}

TEST(StatusReport, StoppedAndFailedNameTheStageAndTheErrorsRank) {
  StatusFacts facts = build_facts("stopped", "add");
  facts.markers["add"] = "3 marker(s) in checkpoints/add/";
  json r = status_report(facts);
  EXPECT_NE(format_status(r).find("  add           stopped, 3 marker(s) in checkpoints/add/\n"),
            std::string::npos)
      << format_status(r);
  EXPECT_EQ(stage_states(r),
            (std::vector<std::string>{"done", "done", "done", "stopped", "not started"}));
  EXPECT_TRUE(r["error"].is_null());
  facts = build_facts("failed", "train");
  facts.status["message"] = "train failed on rank 1: part2.fvecs: row 100: NaN";
  facts.status["error_rank"] = 1;
  r = status_report(facts);
  EXPECT_EQ(r["error"]["rank"], 1);
  EXPECT_NE(format_status(r).find("last error     rank 1: train failed on rank 1"),
            std::string::npos);
  // A status.json without error_rank (an older shardforge): the rank from the message.
  facts.status.erase("error_rank");
  EXPECT_EQ(status_report(facts)["error"]["rank"], 1);
  facts.status["message"] = "config: bad key";
  EXPECT_TRUE(status_report(facts)["error"]["rank"].is_null());
}

TEST(StatusReport, NoStatusJsonTakesTheManifestsCommandAndTheMarkers) {
  StatusFacts facts;
  facts.dir = "old";
  facts.manifest_command = "build";
  facts.stages = {"open", "train", "partition", "add", "merge"};
  facts.markers["train"] = "verified (sizes)";
  const json r = status_report(facts);
  EXPECT_EQ(r["state"], "unknown");
  EXPECT_EQ(r["command"], "build");
  EXPECT_EQ(stage_states(r),
            (std::vector<std::string>{"unknown", "done", "unknown", "unknown", "unknown"}));
}

TEST(StatusReport, AStageTheListLacksIsShownAfterIt) {
  StatusFacts facts = build_facts("running", "polish");
  const json r = status_report(facts);
  EXPECT_EQ(r["stages"].back()["name"], "polish");
  EXPECT_EQ(r["stages"].back()["state"], "running");
  EXPECT_EQ(r["stages"][0]["state"], "done");
}

}  // namespace
}  // namespace sf::commands
