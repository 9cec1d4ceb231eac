// commands/report.h: the figures `shardforge report` draws, as plain functions of what it read
// in a run directory, and the page they go into.
#include "commands/report.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace sf::commands {
namespace {

using nlohmann::json;

TEST(Report, DuplicatesSummedByReasonClusterAndSimilarity) {
  std::istringstream in(
      R"({"id": 5, "cluster": 1, "representative": 1, "reason": "exact", "similarity": 1.0000})"
      "\n"
      R"({"id": 6, "cluster": 1, "representative": 1, "reason": "near", "similarity": 0.8125})"
      "\n"
      "not json\n"
      R"({"id": "x", "cluster": "7", "representative": "7", "reason": "near", "similarity": 0.81})"
      "\n");
  const DuplicateSummary d = summarize_duplicates(in, 1 << 20);
  EXPECT_EQ(d.lines, 3);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.by_reason.at("exact"), 1);
  EXPECT_EQ(d.by_reason.at("near"), 2);
  // Cluster 1: two removed + its representative; cluster "7" (a string, not row 7): one + one.
  EXPECT_EQ(d.clusters_by_size.at(3), 1);
  EXPECT_EQ(d.clusters_by_size.at(2), 1);
  EXPECT_EQ(d.similarity.at("exact").back(), 1);  // 1.0 falls in the last bin
  EXPECT_EQ(d.similarity.at("near")[40], 2);      // [0.80, 0.82)
}

TEST(Report, DuplicatesStopAtTheByteLimit) {
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += R"({"cluster": )" + std::to_string(i) +
            R"(, "reason": "exact", "similarity": 1.0})"
            "\n";
  std::istringstream in(text);
  const DuplicateSummary d = summarize_duplicates(in, 500);
  EXPECT_TRUE(d.truncated);
  EXPECT_GT(d.lines, 0);
  EXPECT_LT(d.lines, 100);
}

TEST(Report, TimelineStagesStartWhenTheSlowestRankEnded) {
  ReportFacts facts;
  facts.dir = "runs/x";
  facts.run = {
      {"format_version", 1},
      {"commands",
       {{"eval",
         {{"ranks", 2},
          {"stages",
           json::array(
               {{{"name", "load"}, {"seconds", {1.0, 3.0}}, {"peak_rss_mib", {10, 20}}},
                {{"name", "search"}, {"seconds", {2.0, 1.0}}, {"peak_rss_mib", {30, 40}}}})}}},
        {"build",
         {{"ranks", 2},
          {"memory_budget_mib", 512},
          {"stages",
           json::array(
               {{{"name", "train"}, {"seconds", {1.0, 1.0}}, {"peak_rss_mib", {1, 2}}}})}}}}}};
  const json data = report_data(facts);
  ASSERT_EQ(data["timelines"].size(), 2u);
  EXPECT_EQ(data["timelines"][0]["command"], "build");  // the producer first
  const json& eval = data["timelines"][1];
  EXPECT_EQ(eval["stages"][1]["start"], 3.0);
  EXPECT_EQ(eval["stages"][1]["end"], 5.0);
  EXPECT_EQ(data["memory"][0]["budget_mib"], 512);
  EXPECT_TRUE(data["memory"][1]["budget_mib"].is_null());
  EXPECT_TRUE(data["lists"].is_null());
  EXPECT_TRUE(data["dedup"].is_null());
}

TEST(Report, OddFilesGiveNoFiguresRatherThanAnError) {
  ReportFacts facts;
  facts.run = {{"commands",
                {{"build", {{"ranks", "two"}, {"stages", {1, 2}}}},
                 {"run", {{"ranks", 1}, {"stages", json::array({7})}}},
                 {"eval", 3}}}};
  facts.dedup = json::array();
  json data;
  ASSERT_NO_THROW(data = report_data(facts));
  EXPECT_TRUE(data["timelines"].empty());
  EXPECT_TRUE(data["dedup"].is_null());
}

TEST(Report, ListSizesBinnedWithFaissImbalance) {
  ReportFacts facts;
  facts.list_sizes = {0, 2, 2, 4};
  const json lists = report_data(facts)["lists"];
  EXPECT_EQ(lists["nlist"], 4);
  EXPECT_EQ(lists["ntotal"], 8);
  EXPECT_EQ(lists["empty"], 1);
  EXPECT_DOUBLE_EQ(lists["imbalance"].get<double>(), 4.0 * 24 / 64);
  int64_t counted = 0;
  for (const json& b : lists["bins"]) counted += b["lists"].get<int64_t>();
  EXPECT_EQ(counted, 4);
}

TEST(Report, ShardsJoinSearchAndPlan) {
  ReportFacts facts;
  facts.search = {{"per_shard_codes_scanned", {100, 50}}};
  facts.plan = {
      {"shard_summary",
       json::array({{{"shard", 1}, {"vectors", 7}, {"lists", 2}, {"expected_cost", 1e-6}}})}};
  const json shards = report_data(facts)["shards"];
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards[0]["codes_scanned"], 100);
  EXPECT_TRUE(shards[0]["vectors"].is_null());
  EXPECT_EQ(shards[1]["vectors"], 7);
}

TEST(Report, PageHoldsTheDataWithoutEndingItsScript) {
  const std::string page =
      report_html({{"run_dir", "</script><b>x"}}, "window.Chart = function () {};");
  EXPECT_NE(page.find("<\\/script><b>x"), std::string::npos);
  EXPECT_EQ(page.find("</script><b>x"), std::string::npos);
  EXPECT_NE(page.find("window.Chart = function () {};"), std::string::npos);
  EXPECT_EQ(page.find("@REPORT_DATA@"), std::string::npos);
  EXPECT_EQ(page.find("@CHART_JS@"), std::string::npos);
}

}  // namespace
}  // namespace sf::commands
