#include "pipeline/eval_report.h"

#include <cstdio>
#include <optional>

namespace sf::pipeline {
namespace {

nlohmann::json optional_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string cell(const nlohmann::json& v) {
  char buf[32];
  if (v.is_null()) return "       -";
  std::snprintf(buf, sizeof(buf), "%8.4f", v.get<double>());
  return buf;
}

}  // namespace

nlohmann::json eval_json(int k, int64_t queries, const std::string& ground_truth, int ranks,
                         int threads, const std::vector<stages::EvalPoint>& points) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& p : points)
    results.push_back({{"nprobe", p.nprobe},
                       {"recall@1", optional_json(p.recall_at_1)},
                       {"recall@10", optional_json(p.recall_at_10)},
                       {"recall@100", optional_json(p.recall_at_100)},
                       {"qps", p.qps}});
  return {{"k", k},
          {"queries", queries},
          {"ground_truth", ground_truth},
          {"ranks", ranks},
          {"threads_per_rank", threads},
          {"results", results}};
}

void print_eval_table(const nlohmann::json& eval, const std::string& note) {
  std::printf("%d queries, ground truth: %s, %d rank(s) x %d thread(s)%s\n",
              eval.at("queries").get<int>(), eval.at("ground_truth").get<std::string>().c_str(),
              eval.at("ranks").get<int>(), eval.at("threads_per_rank").get<int>(), note.c_str());
  std::printf("%8s %9s %9s %10s %12s\n", "nprobe", "recall@1", "recall@10", "recall@100", "qps");
  for (const auto& r : eval.at("results"))
    std::printf("%8d %9s %9s %10s %12.1f\n", r.at("nprobe").get<int>(),
                cell(r.at("recall@1")).c_str(), cell(r.at("recall@10")).c_str(),
                cell(r.at("recall@100")).c_str(), r.at("qps").get<double>());
  std::fflush(stdout);
}

}  // namespace sf::pipeline
