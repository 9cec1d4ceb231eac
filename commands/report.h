// `shardforge report RUN_DIR_OR_CONFIG [--output FILE]`: one self-contained HTML page of plots and
// tables of what a run directory holds (run.json, eval.json, search.json, plan.json, dedup.json,
// duplicates.jsonl, index.faiss's list sizes). One process, no MPI; it writes only the page.
// The parts below are plain functions of what was read, so that tests give them contents.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sf::commands {

// Where the page gets Chart.js from: Debian's libjs-chart.js, read when the page is written
// and put into it, so that the page opens without a network.
constexpr const char* kChartJsPath = "/usr/share/javascript/chart.js/chart.min.js";

struct ReportOptions {
  std::string run_dir;  // a run directory, or a config (its output.dir)
  std::string output;   // "" = <run_dir>/report.html
};
// Not collective, no MPI: writes the page (atomically) and prints its path. Returns 0. Throws
// runtime::ConfigError (exit 2) when run_dir is not a run directory or a readable config, or the
// default output is a file shardforge did not write; std::runtime_error when Chart.js is missing
// (naming the package) or the page cannot be written.
int report_job(const ReportOptions& options);

// What duplicates.jsonl says, summed: removed documents per reason, clusters by size
// (representative included), and removed documents per similarity bin and reason.
struct DuplicateSummary {
  static constexpr int kSimilarityBins = 50;  // [0, 0.02), ..., [0.98, 1.0]
  int64_t lines = 0;
  bool truncated = false;  // stopped after max_bytes: the figures are of the first `lines`
  std::map<std::string, int64_t> by_reason;
  std::map<int64_t, int64_t> clusters_by_size;
  std::map<std::string, std::vector<int64_t>> similarity;  // reason -> kSimilarityBins counts
};
// Reads duplicates.jsonl lines ({"cluster", "reason", "similarity", ...}) up to max_bytes;
// unparsable lines are skipped.
DuplicateSummary summarize_duplicates(std::istream& in, uint64_t max_bytes);

// What `report` read from a run directory; null / empty where a file is missing.
struct ReportFacts {
  std::string dir;
  std::string command;  // the manifest's or status.json's
  nlohmann::json status, run, eval, search, plan, dedup;
  std::vector<int64_t> list_sizes;  // index.faiss's inverted lists
  std::string index_note;           // why there are no list sizes ("" when there are)
  bool has_duplicates = false;
  DuplicateSummary duplicates;
};

// The data the page draws: {"run_dir", "command", "last_command", "state", "timelines":
// [{"command", "ranks", "stages": [{"name", "start", "end", "seconds": [per rank]}]}], "memory":
// [{"command", "budget_mib" | null, "stages": [{"name", "peak_rss_mib": [per rank]}]}], "lists":
// {"nlist", "ntotal", "min", "max", "mean", "empty", "imbalance", "bins": [{"from", "to",
// "lists"}]} | null, "eval": eval.json | null, "shards": [{"shard", "codes_scanned", "vectors",
// "lists", "expected_cost"}] | null, "search": {...} | null, "dedup": {"docs_in", "docs_out",
// "by_reason", "cluster_sizes": [{"size", "clusters"}], "similarity": {"bin_width", "by_reason"},
// "lines", "truncated", "clusters", "largest_cluster"} | null}.
nlohmann::json report_data(const ReportFacts& facts);

// The page: the data as JSON and Chart.js's source, both inside it.
std::string report_html(const nlohmann::json& data, const std::string& chart_js);

}  // namespace sf::commands
