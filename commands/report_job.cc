// `shardforge report RUN_DIR`: see commands/report.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <unordered_map>

#include "commands/report.h"
#include "commands/run_files.h"
#include "commands/report_template.h"  // kReportTemplate, generated from commands/report.html.in
#include "io/atomic_file.h"
#include "io/index_file.h"
#include "io/jsonl_fields.h"
#include "runtime/config.h"
#include "stages/ivf_index.h"

namespace sf::commands {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// duplicates.jsonl is read up to this many bytes (about 10 million lines).
constexpr uint64_t kDuplicatesMaxBytes = uint64_t{1} << 30;

std::string text_of(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// A number of `j[key]`, or null.
json number_of(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key] : json(nullptr);
}

std::vector<double> numbers(const json& j) {
  std::vector<double> out;
  if (j.is_array())
    for (const json& v : j) out.push_back(v.is_number() ? v.get<double>() : 0.0);
  return out;
}

// run.json's commands: the per-rank stage timelines, and the peaks against the budget.
void add_stage_figures(const json& run, json& data) {
  data["timelines"] = json::array();
  data["memory"] = json::array();
  if (!run.is_object() || !run.contains("commands") || !run["commands"].is_object()) return;
  // Commands in the order they ran where that is known: producers first.
  std::vector<std::string> order;
  for (const char* c : {"dedup", "build", "run", "eval", "search"})
    if (run["commands"].contains(c)) order.emplace_back(c);
  for (const auto& [name, entry] : run["commands"].items())
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  for (const std::string& name : order) {
    const json& entry = run["commands"][name];
    if (!entry.is_object() || !entry.contains("stages") || !entry["stages"].is_array()) continue;
    const json ranks_value = number_of(entry, "ranks");
    const int ranks = ranks_value.is_number_integer() ? ranks_value.get<int>() : 0;
    json timeline = {{"command", name}, {"ranks", ranks}, {"stages", json::array()}};
    json memory = {{"command", name}, {"budget_mib", nullptr}, {"stages", json::array()}};
    json budget = number_of(entry, "memory_budget_mib");
    if (budget.is_null()) budget = number_of(run, "memory_budget_mib");
    memory["budget_mib"] = budget;
    double start = 0;
    for (const json& s : entry["stages"]) {
      if (!s.is_object()) continue;
      std::vector<double> secs = numbers(s.value("seconds", json::array()));
      std::vector<double> rss = numbers(s.value("peak_rss_mib", json::array()));
      if (ranks <= 0 || secs.size() != static_cast<size_t>(ranks)) continue;
      rss.resize(secs.size(), 0.0);
      const double end = start + *std::max_element(secs.begin(), secs.end());
      const std::string stage = text_of(s, "name");
      timeline["stages"].push_back(
          {{"name", stage}, {"start", start}, {"end", end}, {"seconds", secs}});
      memory["stages"].push_back({{"name", stage}, {"peak_rss_mib", rss}});
      start = end;
    }
    if (timeline["stages"].empty()) continue;
    data["timelines"].push_back(timeline);
    data["memory"].push_back(memory);
  }
}

json list_figures(const std::vector<int64_t>& sizes) {
  if (sizes.empty()) return nullptr;
  const auto [lo, hi] = std::minmax_element(sizes.begin(), sizes.end());
  int64_t total = 0, empty = 0;
  for (int64_t n : sizes) {
    total += n;
    empty += n == 0;
  }
  const double nlist = static_cast<double>(sizes.size());
  const double imbalance = stages::list_imbalance(sizes);  // 1 is perfectly even
  // At most 30 bins of whole sizes from the smallest to the largest list.
  const int64_t span = *hi - *lo + 1;
  const int64_t width = (span + 29) / 30;
  json bins = json::array();
  for (int64_t from = *lo; from <= *hi; from += width) {
    const int64_t to = std::min(*hi, from + width - 1);
    const auto n =
        std::count_if(sizes.begin(), sizes.end(), [&](int64_t s) { return s >= from && s <= to; });
    bins.push_back({{"from", from}, {"to", to}, {"lists", n}});
  }
  return {{"nlist", sizes.size()},
          {"ntotal", total},
          {"min", *lo},
          {"max", *hi},
          {"mean", static_cast<double>(total) / nlist},
          {"empty", empty},
          {"imbalance", imbalance},
          {"bins", bins}};
}

// Per shard: codes scanned (search.json) and what plan.json placed there.
json shard_figures(const json& search, const json& plan) {
  std::map<int64_t, json> shards;
  auto row = [&](int64_t s) -> json& {
    json& r = shards[s];
    if (r.is_null())
      r = {{"shard", s},
           {"codes_scanned", nullptr},
           {"vectors", nullptr},
           {"lists", nullptr},
           {"expected_cost", nullptr}};
    return r;
  };
  if (search.is_object() && search.contains("per_shard_codes_scanned"))
    for (size_t s = 0; s < search["per_shard_codes_scanned"].size(); ++s)
      row(static_cast<int64_t>(s))["codes_scanned"] = search["per_shard_codes_scanned"][s];
  if (plan.is_object() && plan.contains("shard_summary") && plan["shard_summary"].is_array())
    for (const json& s : plan["shard_summary"]) {
      if (!s.is_object() || !s.contains("shard") || !s["shard"].is_number_integer()) continue;
      json& r = row(s["shard"].get<int64_t>());
      r["vectors"] = number_of(s, "vectors");
      r["lists"] = number_of(s, "lists");
      r["expected_cost"] = number_of(s, "expected_cost");
    }
  if (shards.empty()) return nullptr;
  json out = json::array();
  for (auto& [s, r] : shards) out.push_back(r);
  return out;
}

// Cluster sizes as they are when there are few, else in powers of two (2, 3-4, 5-8, ...).
json cluster_size_rows(const std::map<int64_t, int64_t>& by_size) {
  json out = json::array();
  if (by_size.size() <= 24) {
    for (const auto& [size, n] : by_size)
      out.push_back({{"label", std::to_string(size)}, {"clusters", n}});
    return out;
  }
  std::map<int64_t, int64_t> buckets;  // upper bound (a power of two) -> clusters
  for (const auto& [size, n] : by_size) {
    int64_t upper = 2;
    while (upper < size) upper *= 2;
    buckets[upper] += n;
  }
  for (const auto& [upper, n] : buckets) {
    const int64_t lower = upper == 2 ? 2 : upper / 2 + 1;
    out.push_back({{"label", lower == upper ? std::to_string(upper)
                                            : std::to_string(lower) + "–" + std::to_string(upper)},
                   {"clusters", n}});
  }
  return out;
}

// Dedup's figures: dedup.json (dedup) or run.json's run summary, and duplicates.jsonl.
json dedup_figures(const ReportFacts& facts) {
  json summary = facts.dedup;
  if (!summary.is_object() && facts.run.is_object() && facts.run.contains("commands") &&
      facts.run["commands"].contains("run") && facts.run["commands"]["run"].is_object())
    summary = facts.run["commands"]["run"].value("summary", json(nullptr));
  if (!summary.is_object() && !facts.has_duplicates) return nullptr;
  if (!summary.is_object()) summary = json::object();
  const DuplicateSummary& d = facts.duplicates;
  json by_reason = json::object();
  if (facts.has_duplicates && !d.truncated) {
    for (const auto& [reason, n] : d.by_reason) by_reason[reason] = n;
  } else {
    for (const auto& [key, reason] : {std::pair{"exact_duplicates", "exact"},
                                      {"near_duplicates", "near"},
                                      {"semantic_duplicates", "semantic"}})
      if (summary.contains(key) && summary[key].is_number()) by_reason[reason] = summary[key];
  }
  json similarity = {{"bin_width", 1.0 / DuplicateSummary::kSimilarityBins},
                     {"by_reason", json::object()}};
  for (const auto& [reason, bins] : d.similarity) similarity["by_reason"][reason] = bins;
  int64_t clusters = 0, largest = 0;
  for (const auto& [size, n] : d.clusters_by_size) {
    clusters += n;
    largest = std::max(largest, size);
  }
  json docs_out = number_of(summary, "docs_out");
  if (docs_out.is_null()) docs_out = number_of(summary, "docs_kept");
  return {{"docs_in", number_of(summary, "docs_in")},
          {"docs_out", docs_out},
          {"by_reason", by_reason},
          {"cluster_sizes", cluster_size_rows(d.clusters_by_size)},
          {"clusters", clusters},
          {"largest_cluster", largest},
          {"similarity", similarity},
          {"lines", d.lines},
          {"truncated", d.truncated}};
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

void replace_once(std::string& text, const std::string& token, const std::string& with) {
  const size_t at = text.find(token);
  if (at != std::string::npos) text.replace(at, token.size(), with);
}

// Whether `path` is a page `report` wrote (its generator tag in the first bytes).
bool written_by_report(const std::string& path) {
  std::ifstream in(path);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find("<meta name=\"generator\" content=\"shardforge report\">") != std::string::npos;
}

}  // namespace

DuplicateSummary summarize_duplicates(std::istream& in, uint64_t max_bytes) {
  DuplicateSummary out;
  std::unordered_map<std::string, int64_t> removed;  // cluster (its JSON text) -> removed docs
  uint64_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    bytes += line.size() + 1;
    if (bytes > max_bytes) {
      out.truncated = true;
      break;
    }
    // duplicates.jsonl is shardforge's own output: only its three fields are read, without
    // building a document (3x nlohmann's parse).
    io::JsonField fields[3];
    fields[0].name = "cluster";
    fields[1].name = "reason";
    fields[2].name = "similarity";
    if (io::parse_jsonl_fields(line, fields, 3) != io::JsonLineStatus::kObject) continue;
    ++out.lines;
    const std::string reason =
        fields[1].type == io::JsonField::kString ? fields[1].string : "unknown";
    ++out.by_reason[reason];
    if (fields[0].type == io::JsonField::kString)
      ++removed["\"" + fields[0].string];  // a string label apart from a row number
    else if (fields[0].type == io::JsonField::kNumber)
      ++removed[std::string(fields[0].token)];
    if (fields[2].type == io::JsonField::kNumber) {
      const double s =
          std::clamp(std::strtod(std::string(fields[2].token).c_str(), nullptr), 0.0, 1.0);
      const int bin = std::min(DuplicateSummary::kSimilarityBins - 1,
                               static_cast<int>(s * DuplicateSummary::kSimilarityBins));
      std::vector<int64_t>& bins = out.similarity[reason];
      bins.resize(DuplicateSummary::kSimilarityBins, 0);
      ++bins[static_cast<size_t>(bin)];
    }
  }
  for (const auto& [cluster, n] : removed) ++out.clusters_by_size[n + 1];
  return out;
}

json report_data(const ReportFacts& facts) {
  json data = {{"run_dir", facts.dir},
               {"command", facts.command},
               {"last_command", text_of(facts.status, "command")},
               {"state", text_of(facts.status, "state")},
               {"written", utc_now()}};
  add_stage_figures(facts.run, data);
  data["lists"] = list_figures(facts.list_sizes);
  data["lists_note"] = facts.index_note;
  data["eval"] = facts.eval.is_object() ? facts.eval : json(nullptr);
  data["search"] = facts.search.is_object() ? facts.search : json(nullptr);
  data["shards"] = shard_figures(facts.search, facts.plan);
  data["dedup"] = dedup_figures(facts);
  return data;
}

std::string report_html(const json& data, const std::string& chart_js) {
  // Inside <script>, "</" would end the element: JSON allows "<\/" for it.
  std::string json_text = data.dump(-1, ' ', false, json::error_handler_t::replace);
  for (size_t at = 0; (at = json_text.find("</", at)) != std::string::npos; at += 3)
    json_text.replace(at, 2, "<\\/");
  std::string page = kReportTemplate;
  replace_once(page, "@REPORT_DATA@", json_text);
  replace_once(page, "@CHART_JS@", chart_js);
  return page;
}

int report_job(const ReportOptions& options) {
  std::error_code ec;
  RunFiles files = read_run_files(options.run_dir);
  const std::string& dir = files.dir;
  const json& manifest = files.manifest;
  ReportFacts facts;
  facts.dir = dir;
  facts.status = files.status;
  facts.run = files.run;
  const std::string output = options.output.empty() ? dir + "/report.html" : options.output;
  if (options.output.empty() && fs::exists(output, ec) && !written_by_report(output))
    throw runtime::ConfigError(output +
                               " exists and `shardforge report` did not write it: "
                               "move it, or name another file with --output");
  std::ifstream chart_in(kChartJsPath, std::ios::binary);
  if (!chart_in)
    throw std::runtime_error(std::string(kChartJsPath) +
                             ": not found; the report draws with Chart.js from Debian's "
                             "libjs-chart.js package (apt-get install libjs-chart.js)");
  const std::string chart_js((std::istreambuf_iterator<char>(chart_in)),
                             std::istreambuf_iterator<char>());

  facts.command = text_of(manifest, "command");
  if (facts.command.empty()) facts.command = text_of(facts.status, "command");
  facts.eval = read_json_file(dir + "/eval.json");
  facts.search = read_json_file(dir + "/search.json");
  facts.plan = read_json_file(dir + "/plan.json");
  facts.dedup = read_json_file(dir + "/dedup.json");
  const std::string index_path = dir + "/index.faiss";
  if (fs::exists(index_path, ec)) {
    try {
      const std::unique_ptr<faiss::Index> index = io::read_index_file_mapped(index_path);
      if (const faiss::IndexIVF* ivf = stages::find_ivf(index.get())) {
        for (size_t l = 0; l < ivf->nlist; ++l)
          facts.list_sizes.push_back(static_cast<int64_t>(ivf->invlists->list_size(l)));
      } else {
        facts.index_note = "index.faiss is not an IVF index";
      }
    } catch (const std::exception& e) {
      facts.index_note = e.what();
      spdlog::warn("report: no list sizes: {}", e.what());
    }
  }
  std::ifstream duplicates(dir + "/duplicates.jsonl");
  if (duplicates) {
    facts.has_duplicates = true;
    facts.duplicates = summarize_duplicates(duplicates, kDuplicatesMaxBytes);
  }
  io::publish_text(output, report_html(report_data(facts), chart_js));
  std::printf("%s\n", output.c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace sf::commands
