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

// Prints eval.json's table on stdout: "<queries> queries, ground truth: <...>, <ranks> rank(s)
// x <threads> thread(s)<note>", then one line per nprobe. Throws nlohmann::json::exception on
// a malformed `eval`.
void print_eval_table(const nlohmann::json& eval, const std::string& note = "");

}  // namespace sf::pipeline
