#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/MetricType.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/index_file.h"
#include "commands/commands.h"
#include "pipeline/eval_report.h"
#include "pipeline/index_build.h"
#include "runtime/checkpoint.h"
#include "runtime/run_manifest.h"
#include "stages/ivf_index.h"
#include "stages/partition.h"

namespace sf::commands {
namespace {

void print_index(const std::string& path) {
  std::unique_ptr<faiss::Index> index = io::read_index_file(path);
  const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
  std::printf("index        %s (%ju bytes)\n", path.c_str(),
              static_cast<uintmax_t>(std::filesystem::file_size(path)));
  std::printf("vectors      %jd x %d dims, metric %s\n", static_cast<intmax_t>(index->ntotal),
              index->d, index->metric_type == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index.get()))
    std::printf("transforms   %zu (-> %d dims)\n", pt->chain.size(), pt->index->d);
  if (ivf == nullptr) return;
  size_t lo = SIZE_MAX, hi = 0, empty = 0;
  for (size_t l = 0; l < ivf->nlist; ++l) {
    const size_t n = ivf->invlists->list_size(l);
    lo = std::min(lo, n);
    hi = std::max(hi, n);
    empty += n == 0;
  }
  std::printf("ivf          nlist %zu, code size %zu bytes, stored nprobe %zu\n", ivf->nlist,
              ivf->code_size, ivf->nprobe);
  std::printf("lists        min %zu, mean %.1f, max %zu, empty %zu, imbalance %.3f\n", lo,
              static_cast<double>(ivf->ntotal) / static_cast<double>(ivf->nlist), hi, empty,
              ivf->invlists->imbalance_factor());
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

void print_run(const nlohmann::json& run) {
  if (!run.is_object() || !run.contains("commands")) return;
  for (const auto& [command, entry] : run["commands"].items()) {
    std::printf("%s: %d rank(s) x %d thread(s)", command.c_str(), entry.value("ranks", 0),
                entry.value("threads_per_rank", 0));
    const double budget = entry.value("memory_budget_mib", 0.0);
    if (budget > 0)
      std::printf(", memory budget %.0f MiB per rank (%s)", budget,
                  entry.value("memory_budget_source", std::string()).c_str());
    std::printf("\n");
    for (const auto& stage : entry["stages"]) {
      double secs = 0, rss = 0;
      for (const auto& s : stage["seconds"]) secs = std::max(secs, s.get<double>());
      for (const auto& r : stage["peak_rss_mib"]) rss = std::max(rss, r.get<double>());
      std::printf("  %-14s %9.2f s  peak %8.1f MiB (slowest / largest rank)",
                  stage["name"].get<std::string>().c_str(), secs, rss);
      if (budget > 0)
        std::printf("  %3.0f%% of budget%s", 100 * rss / budget,
                    rss > budget ? "  OVER BUDGET" : "");
      std::printf("\n");
    }
  }
}

void print_eval(const nlohmann::json& eval) {
  if (!eval.is_object()) return;
  std::printf("eval (k=%d, %d queries):\n", eval.value("k", 0), eval.value("queries", 0));
  for (const auto& r : eval["results"]) {
    auto fmt = [&](const char* key) {
      return r[key].is_null() ? std::string("-") : std::to_string(r[key].get<double>()).substr(0, 6);
    };
    std::printf("  nprobe %4d  recall@1 %s  recall@10 %s  recall@100 %s  qps %.0f\n",
                r["nprobe"].get<int>(), fmt("recall@1").c_str(), fmt("recall@10").c_str(),
                fmt("recall@100").c_str(), r["qps"].get<double>());
  }
  try {
    if (const std::string line = pipeline::recommendation_line(eval); !line.empty())
      std::printf("  %s\n", line.c_str());
  } catch (const nlohmann::json::exception& e) {
    std::printf("  recommended nprobe: unreadable (%s)\n", e.what());
  }
}

// The partition plan (plan.json): shards, balance, scan cost, hottest lists.
void print_plan(const std::string& path) {
  stages::PartitionPlan plan;
  try {
    plan = stages::read_plan(path);
  } catch (const std::exception& e) {
    std::printf("plan         unreadable: %s\n", e.what());
    return;
  }
  std::printf("plan         %s (format_version %d): %d shard(s), nlist %d, nprobe %d, balance by %s\n",
              path.c_str(), stages::kPlanFormatVersion, plan.shards, plan.nlist, plan.nprobe,
              plan.balance.c_str());
  if (plan.workload.empty())
    std::printf("workload     none (lists placed by size)\n");
  else
    std::printf("workload     %s (%jd queries)\n", plan.workload.c_str(),
                static_cast<intmax_t>(plan.workload_queries));
  std::printf("scan cost    lambda(s) = %.3g + %.3g * s seconds per query (%s)\n", plan.scan_cost.a,
              plan.scan_cost.b, plan.scan_cost.source.c_str());
  const auto& r = plan.repartition;
  std::printf("lists        nlist %d -> %d: hot tiers +%d, cold tiers -%d%s\n", r.nlist_before,
              r.nlist_after, r.splits, r.merges, r.applied ? "" : " (unchanged)");
  for (size_t t = 0; t < r.tiers.lists_after.size() && t < r.tiers.access.size(); ++t)
    std::printf("  tier %zu: access %.3f, %jd rows, lists %d -> %d\n", t, r.tiers.access[t],
                static_cast<intmax_t>(r.tiers.rows[t]), r.tiers.lists_before[t], r.tiers.lists_after[t]);
  if (r.recall_queries > 0)
    std::printf("  recall check: recall@10 %.4f of %d workload queries at nprobe %d; the re-sized "
                "lists need nprobe %.2f, cost %.3g -> %.3g s/query\n",
                r.recall_target, r.recall_queries, plan.nprobe, r.nprobe_after, r.cost_before,
                r.cost_after);
  std::printf("balance      expected shard cost max/mean %.3f (count-balanced placement %.3f)\n",
              plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost);
  if (plan.shards_per_query > 0)
    std::printf(
        "co-location  %s (slack %.2f): workload queries reach %.2f shard(s) each, %.2f "
        "without it\n",
        plan.colocated ? "applied" : "not kept", plan.colocate_slack, plan.shards_per_query,
        plan.lpt_shards_per_query);
  std::printf("  %5s %7s %10s %14s\n", "shard", "lists", "vectors", "expected cost");
  for (int s = 0; s < plan.shards; ++s) {
    int64_t lists = 0, vectors = 0;
    double cost = 0;
    for (const auto& l : plan.lists)
      for (int t : l.shards)
        if (t == s) {
          ++lists;
          vectors += l.size;
          cost += l.cost / static_cast<double>(l.shards.size());
        }
    std::printf("  %5d %7jd %10jd %14.3g\n", s, static_cast<intmax_t>(lists),
                static_cast<intmax_t>(vectors), cost);
  }
  std::vector<int> order(plan.lists.size());
  for (size_t j = 0; j < order.size(); ++j) order[j] = static_cast<int>(j);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return plan.lists[a].cost > plan.lists[b].cost; });
  std::printf("  hottest lists (list: size, access, cost, shards):\n");
  for (size_t i = 0; i < std::min<size_t>(5, order.size()); ++i) {
    const auto& l = plan.lists[order[i]];
    std::string shards;
    for (int t : l.shards) shards += (shards.empty() ? "" : ",") + std::to_string(t);
    std::printf("    %6d: %8jd %8.4f %10.3g  [%s]\n", order[i], static_cast<intmax_t>(l.size),
                l.access, l.cost, shards.c_str());
  }
}

// tune.json (index.factory auto): the choice and every candidate's evidence.
void print_tune(const nlohmann::json& tune) {
  if (!tune.is_object() || !tune["factory"].is_string()) return;
  const uint64_t budget = tune.value("memory_budget", uint64_t{0});
  std::printf("index choice %s, nprobe %d (index.factory auto: recall@%d >= %.3f within %s; "
              "%zu candidates on %jd sample rows, %jd held-out queries)\n",
              tune["factory"].get<std::string>().c_str(), tune.value("nprobe", 0),
              tune.value("k", 0), tune.value("target_recall", 0.0),
              budget > 0 ? runtime::human_bytes(budget).c_str() : "no size limit",
              tune["candidates"].size(), static_cast<intmax_t>(tune.value("sample_rows", int64_t{0})),
              static_cast<intmax_t>(tune.value("sample_queries", int64_t{0})));
  for (const auto& c : tune["candidates"])
    std::printf("  %s\n", pipeline::tune_row(c, c.value("factory", std::string()) ==
                                                     tune["factory"].get<std::string>())
                               .c_str());
}

void print_search(const nlohmann::json& search) {
  if (!search.is_object()) return;
  std::printf("search (k=%d, nprobe %d, %d queries, %d rank(s)): qps %.0f, codes scanned per query %.1f, shard load max/mean %.3f\n",
              search.value("k", 0), search.value("nprobe", 0), search.value("queries", 0),
              search.value("ranks", 0), search.value("qps", 0.0),
              search.value("codes_scanned_per_query", 0.0),
              search.value("shard_codes_max_over_mean", 0.0));
}

}  // namespace

int info_job(cluster::Comm& comm, const runtime::Config& config) {
  // The outputs shown, checked against the markers of the stages that wrote them (rank 0;
  // agreed, so that other ranks do not part from a failed one).
  cluster::run_local_phase(comm, "info: verify outputs", [&] {
    if (comm.rank() != 0) return;
    const runtime::Checkpoints checkpoints(config.output.dir);
    const std::pair<const char*, const char*> shown[] = {{"index.faiss", "merge"},
                                                         {"plan.json", "merge"},
                                                         {"eval.json", "eval"},
                                                         {"tune.json", "tune"},
                                                         {"search.json", "search"}};
    for (const auto& [file, stage] : shown)
      if (std::filesystem::exists(checkpoints.path(file))) checkpoints.require_output(stage, file);
  });
  if (comm.rank() != 0) return 0;
  const std::string& dir = config.output.dir;
  std::printf("run directory %s\n", dir.c_str());
  try {
    const runtime::RunManifest manifest = runtime::RunManifest::load(dir);
    if (!manifest.command().empty())
      std::printf("made by      shardforge %s\n", manifest.command().c_str());
  } catch (const runtime::ConfigError& e) {
    std::printf("made by      unknown: %s\n", e.what());
  }
  const std::string index_path = dir + "/index.faiss";
  if (std::filesystem::exists(index_path))
    print_index(index_path);
  else
    std::printf("index        (none yet: run `shardforge build`)\n");
  print_tune(read_json(dir + "/tune.json"));
  if (std::filesystem::exists(dir + "/plan.json")) print_plan(dir + "/plan.json");
  print_run(read_json(dir + "/run.json"));
  print_eval(read_json(dir + "/eval.json"));
  print_search(read_json(dir + "/search.json"));
  std::fflush(stdout);
  return 0;
}

}  // namespace sf::commands
