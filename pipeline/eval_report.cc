#include "pipeline/eval_report.h"

#include <spdlog/spdlog.h>

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

void add_recommendation(nlohmann::json& eval, int k, double target,
                        const stages::NprobeChoice& choice) {
  const std::string recall_key = "recall@" + std::to_string(k);
  const double recall = choice.point.recall_at_k.value_or(0.0);
  eval["target_recall"] = target;
  if (choice.reached) {
    eval["recommended"] = {
        {"nprobe", choice.point.nprobe}, {recall_key, recall}, {"qps", choice.point.qps}};
    return;
  }
  eval["recommended"] = nullptr;
  eval["target_not_reached"] = {{"best_recall", recall}, {"nprobe", choice.point.nprobe}};
  spdlog::warn("eval: {} {} is not reached even at nprobe {} (every list): the best is {:.4f}; "
               "build a larger index (a less compressed code) or lower eval.target_recall",
               recall_key, target, choice.point.nprobe, recall);
}

std::string recommendation_line(const nlohmann::json& eval) {
  if (!eval.contains("recommended")) return "";
  const std::string recall_key = "recall@" + std::to_string(eval.at("k").get<int>());
  const double target = eval.at("target_recall").get<double>();
  char buf[256];
  const nlohmann::json& r = eval.at("recommended");
  if (r.is_object()) {
    std::snprintf(buf, sizeof(buf), "recommended nprobe %d: %s %.4f (target %g), qps %.1f",
                  r.at("nprobe").get<int>(), recall_key.c_str(), r.at(recall_key).get<double>(),
                  target, r.at("qps").get<double>());
  } else {
    const nlohmann::json& miss = eval.at("target_not_reached");
    std::snprintf(buf, sizeof(buf),
                  "recommended nprobe: none, %s target %g not reached (best %.4f at nprobe %d)",
                  recall_key.c_str(), target, miss.at("best_recall").get<double>(),
                  miss.at("nprobe").get<int>());
  }
  return buf;
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
  if (const std::string line = recommendation_line(eval); !line.empty())
    std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace sf::pipeline
