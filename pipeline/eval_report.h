// eval.json and its table, the same for `eval` and `run` (run.eval).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stages/eval.h"

namespace sf::pipeline {

// eval.json's content: {"k", "queries", "ground_truth", "ranks", "threads_per_rank",
// "results": [{"nprobe", "recall@1", "recall@10", "recall@100" (null where k is smaller),
// "qps"}]}.
nlohmann::json eval_json(int k, int64_t queries, const std::string& ground_truth, int ranks,
                         int threads, const std::vector<stages::EvalPoint>& points);

// eval.json's recommendation, added to eval_json's content: "target_recall": target, and
// "recommended": {"nprobe", "recall@<k>", "qps"} (the measured point at that nprobe), or
// "recommended": null and "target_not_reached": {"best_recall", "nprobe": nlist} with a
// warning that suggests a larger index or a lower target.
void add_recommendation(nlohmann::json& eval, int k, double target,
                        const stages::NprobeChoice& choice);

// "recommended nprobe 12: recall@10 0.9050 (target 0.9), qps 1234.5", or "recommended nprobe:
// none, recall@10 target 0.9 not reached (best 0.8123 at nprobe 64)"; "" when `eval` has no
// recommendation (an eval.json of an older shardforge, or of an index that is not IVF).
// Throws nlohmann::json::exception on a malformed `eval`.
std::string recommendation_line(const nlohmann::json& eval);

// Prints eval.json's table on stdout: "<queries> queries, ground truth: <...>, <ranks> rank(s)
// x <threads> thread(s)<note>", then one line per nprobe and one for the recommended nprobe
// (where eval.json has one). Throws nlohmann::json::exception on
// a malformed `eval`.
void print_eval_table(const nlohmann::json& eval, const std::string& note = "");

}  // namespace sf::pipeline
