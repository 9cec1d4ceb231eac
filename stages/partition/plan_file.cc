#include "stages/partition/plan_file.h"

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/atomic_file.h"

namespace sf::stages {

nlohmann::json plan_to_json(const PartitionPlan& plan) {
  nlohmann::json sizes = nlohmann::json::array(), access = nlohmann::json::array(),
                 cost = nlohmann::json::array(), shards = nlohmann::json::array();
  for (const ListPlan& l : plan.lists) {
    sizes.push_back(l.size);
    access.push_back(l.access);
    cost.push_back(l.cost);
    shards.push_back(l.shards);
  }
  std::vector<double> shard_cost(plan.shards, 0.0);
  std::vector<int64_t> shard_vectors(plan.shards, 0), shard_lists(plan.shards, 0);
  for (const ListPlan& l : plan.lists)
    for (int s : l.shards) {
      shard_cost[s] += l.cost / static_cast<double>(l.shards.size());
      shard_vectors[s] += l.size;
      shard_lists[s] += 1;
    }
  nlohmann::json summary = nlohmann::json::array();
  for (int s = 0; s < plan.shards; ++s)
    summary.push_back({{"shard", s},
                       {"file", shard_file_name(s)},
                       {"lists", shard_lists[s]},
                       {"vectors", shard_vectors[s]},
                       {"expected_cost", shard_cost[s]}});
  const RepartitionReport& r = plan.repartition;
  return {
      {"format_version", kPlanFormatVersion},
      {"nlist", plan.nlist},
      {"shards", plan.shards},
      {"nprobe", plan.nprobe},
      {"balance", plan.balance},
      {"workload", {{"source", plan.workload}, {"queries", plan.workload_queries}}},
      {"scan_cost",
       {{"a_seconds", plan.scan_cost.a},
        {"b_seconds_per_code", plan.scan_cost.b},
        {"source", plan.scan_cost.source},
        {"sizes", plan.scan_cost.sizes},
        {"seconds_per_query", plan.scan_cost.seconds}}},
      {"max_over_mean_cost", plan.max_over_mean_cost},
      {"count_balanced_max_over_mean_cost", plan.count_balanced_max_over_mean_cost},
      {"expected_cost_per_query", plan.expected_cost_per_query},
      {"colocation",
       {{"applied", plan.colocated},
        {"slack", plan.colocate_slack},
        {"shards_per_query", plan.shards_per_query},
        {"lpt_shards_per_query", plan.lpt_shards_per_query}}},
      {"repartition",
       {{"nlist_before", r.nlist_before},
        {"nlist_after", r.nlist_after},
        {"splits", r.splits},
        {"merges", r.merges},
        {"tiers",
         {{"access", r.tiers.access},
          {"rows", r.tiers.rows},
          {"lists_before", r.tiers.lists_before},
          {"lists_after", r.tiers.lists_after}}},
        {"applied", r.applied},
        {"estimated_cost_before", r.cost_before},
        {"estimated_cost_after", r.cost_after},
        {"recall_check",
         {{"queries", r.recall_queries},
          {"recall_at_10", r.recall_target},
          {"nprobe_after", r.nprobe_after}}}}},
      {"shard_summary", summary},
      {"lists", {{"size", sizes}, {"access", access}, {"cost", cost}, {"shards", shards}}},
  };
}

PartitionPlan plan_from_json(const nlohmann::json& j) {
  try {
    const int version = j.at("format_version").get<int>();
    if (version != kPlanFormatVersion)
      throw std::runtime_error("plan format_version " + std::to_string(version) +
                               ", this shardforge reads " + std::to_string(kPlanFormatVersion));
    PartitionPlan plan;
    plan.nlist = j.at("nlist").get<int>();
    plan.shards = j.at("shards").get<int>();
    plan.nprobe = j.at("nprobe").get<int>();
    plan.balance = j.at("balance").get<std::string>();
    plan.workload = j.at("workload").at("source").get<std::string>();
    plan.workload_queries = j.at("workload").at("queries").get<int64_t>();
    const auto& sc = j.at("scan_cost");
    plan.scan_cost.a = sc.at("a_seconds").get<double>();
    plan.scan_cost.b = sc.at("b_seconds_per_code").get<double>();
    plan.scan_cost.source = sc.at("source").get<std::string>();
    plan.scan_cost.sizes = sc.at("sizes").get<std::vector<int64_t>>();
    plan.scan_cost.seconds = sc.at("seconds_per_query").get<std::vector<double>>();
    plan.max_over_mean_cost = j.at("max_over_mean_cost").get<double>();
    plan.count_balanced_max_over_mean_cost =
        j.at("count_balanced_max_over_mean_cost").get<double>();
    plan.expected_cost_per_query = j.at("expected_cost_per_query").get<double>();
    if (j.contains("colocation")) {  // absent in plans written before co-location
      const auto& c = j.at("colocation");
      plan.colocated = c.at("applied").get<bool>();
      plan.colocate_slack = c.at("slack").get<double>();
      plan.shards_per_query = c.at("shards_per_query").get<double>();
      plan.lpt_shards_per_query = c.at("lpt_shards_per_query").get<double>();
    }
    const auto& r = j.at("repartition");
    plan.repartition.nlist_before = r.at("nlist_before").get<int>();
    plan.repartition.nlist_after = r.at("nlist_after").get<int>();
    plan.repartition.splits = r.at("splits").get<int>();
    plan.repartition.merges = r.at("merges").get<int>();
    plan.repartition.applied = r.at("applied").get<bool>();
    plan.repartition.cost_before = r.at("estimated_cost_before").get<double>();
    plan.repartition.cost_after = r.at("estimated_cost_after").get<double>();
    if (r.contains("recall_check")) {  // absent in plans written before the check
      const auto& rc = r.at("recall_check");
      plan.repartition.recall_queries = rc.at("queries").get<int>();
      plan.repartition.recall_target = rc.at("recall_at_10").get<double>();
      plan.repartition.nprobe_after = rc.at("nprobe_after").get<double>();
    }
    const auto& t = r.at("tiers");
    plan.repartition.tiers.access = t.at("access").get<std::vector<double>>();
    plan.repartition.tiers.rows = t.at("rows").get<std::vector<int64_t>>();
    plan.repartition.tiers.lists_before = t.at("lists_before").get<std::vector<int>>();
    plan.repartition.tiers.lists_after = t.at("lists_after").get<std::vector<int>>();
    plan.repartition.scan_cost = plan.scan_cost;
    const auto& l = j.at("lists");
    const auto sizes = l.at("size").get<std::vector<int64_t>>();
    const auto access = l.at("access").get<std::vector<double>>();
    const auto cost = l.at("cost").get<std::vector<double>>();
    const auto shards = l.at("shards").get<std::vector<std::vector<int>>>();
    if (sizes.size() != static_cast<size_t>(plan.nlist) || access.size() != sizes.size() ||
        cost.size() != sizes.size() || shards.size() != sizes.size())
      throw std::runtime_error("lists: expected " + std::to_string(plan.nlist) + " entries");
    plan.lists.resize(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int s : shards[i])
        if (s < 0 || s >= plan.shards)
          throw std::runtime_error("list " + std::to_string(i) + " on shard " + std::to_string(s) +
                                   " of " + std::to_string(plan.shards));
      if (shards[i].empty())
        throw std::runtime_error("list " + std::to_string(i) + " has no shard");
      plan.lists[i] = {sizes[i], access[i], cost[i], shards[i]};
    }
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("bad plan: ") + e.what());
  }
}

void write_plan(const PartitionPlan& plan, const std::string& path) {
  io::publish_text(path, plan_to_json(plan).dump(1) + "\n");
}

PartitionPlan read_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error(
        path +
        ": cannot open the partition plan (run `shardforge build` with partition.shards > 0)");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return plan_from_json(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace sf::stages
