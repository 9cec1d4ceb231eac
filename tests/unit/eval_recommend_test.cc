// Unit tests for pipeline/eval_recommend.h and eval.json's recommendation
// (pipeline/eval_report.h): the shape of "recommended" / "target_not_reached", its table line,
// and the nprobe query and search take by default (eval.json, else tune.json, else 8).
#include "pipeline/eval_recommend.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/atomic_file.h"
#include "pipeline/eval_report.h"
#include "tests/test_util.h"

namespace sf::pipeline {
namespace {

stages::NprobeChoice choice(bool reached, int nprobe, double recall, double qps) {
  stages::NprobeChoice c;
  c.reached = reached;
  c.point.nprobe = nprobe;
  c.point.recall_at_k = recall;
  c.point.qps = qps;
  return c;
}

TEST(EvalRecommendation, RecordsTheMeasuredPointAtTheRecommendedNprobe) {
  nlohmann::json eval = eval_json(5, 100, "exact", 1, 1, {});
  EXPECT_EQ(recommendation_line(eval), "") << "an eval.json without a recommendation";
  add_recommendation(eval, 5, 0.9, choice(true, 12, 0.925, 1234.5));
  EXPECT_EQ(eval["target_recall"], 0.9);
  EXPECT_EQ(eval["recommended"],
            (nlohmann::json{{"nprobe", 12}, {"recall@5", 0.925}, {"qps", 1234.5}}));
  EXPECT_FALSE(eval.contains("target_not_reached"));
  EXPECT_EQ(recommendation_line(eval),
            "recommended nprobe 12: recall@5 0.9250 (target 0.9), qps 1234.5");
}

TEST(EvalRecommendation, ATargetNotReachedRecordsTheBestRecallAtNlist) {
  nlohmann::json eval = eval_json(10, 100, "exact", 1, 1, {});
  add_recommendation(eval, 10, 0.99, choice(false, 64, 0.8123, 50));
  EXPECT_TRUE(eval["recommended"].is_null());
  EXPECT_EQ(eval["target_not_reached"], (nlohmann::json{{"best_recall", 0.8123}, {"nprobe", 64}}));
  EXPECT_EQ(recommendation_line(eval),
            "recommended nprobe: none, recall@10 target 0.99 not reached (best 0.8123 at nprobe "
            "64)");
}

TEST(EvalTargetRecall, ZeroTakesIndexTargetRecall) {
  runtime::Config config;
  config.index.target_recall = 0.8;
  EXPECT_EQ(eval_target_recall(config), 0.8);
  config.eval.target_recall = 0.95;
  EXPECT_EQ(eval_target_recall(config), 0.95);
}

TEST(DefaultNprobe, EvalJsonThenTuneJsonThenEight) {
  testing::TempDir dir;
  const runtime::Checkpoints checkpoints(dir.path());
  std::filesystem::create_directories(dir.file("checkpoints"));
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 8);
  EXPECT_EQ(default_nprobe(dir.path()).source, "the default");

  io::publish_text(dir.file("tune.json"), R"({"factory": "IVF64,SQ8", "nprobe": 6})");
  checkpoints.mark_complete(runtime::Fingerprint("tune"), {"tune.json"});
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 6);
  EXPECT_EQ(default_nprobe(dir.path()).source, "tune.json");

  io::publish_text(dir.file("eval.json"), R"({"k": 10, "recommended": {"nprobe": 11}})");
  checkpoints.mark_complete(runtime::Fingerprint("eval"), {"eval.json"});
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 11);
  EXPECT_EQ(default_nprobe(dir.path()).source, "eval.json (recommended)");

  // Changed after its marker: not used.
  io::publish_text(dir.file("eval.json"), R"({"k": 10, "recommended": {"nprobe": 99}})");
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 6);

  io::publish_text(dir.file("eval.json"),
                   R"({"k": 10, "recommended": null, "target_not_reached": {}})");
  checkpoints.mark_complete(runtime::Fingerprint("eval"), {"eval.json"});
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 6) << "no recommendation: tune.json's";
  std::filesystem::remove(dir.file("tune.json"));
  EXPECT_EQ(default_nprobe(dir.path()).nprobe, 8);
}

}  // namespace
}  // namespace sf::pipeline
