#include "stages/partition/plan.h"

#include <faiss/IndexIVF.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "io/index_file.h"
#include "stages/ivf_index.h"
#include "stages/partition/placement.h"
#include "stages/partition/probes.h"

namespace sf::stages {
namespace {

constexpr int64_t kColocateQueries = 4096;         // workload queries co-location looks at

}  // namespace

std::vector<int> PartitionPlan::lists_of_shard(int shard) const {
  std::vector<int> out;
  for (size_t j = 0; j < lists.size(); ++j)
    if (std::find(lists[j].shards.begin(), lists[j].shards.end(), shard) != lists[j].shards.end())
      out.push_back(static_cast<int>(j));
  return out;
}

PartitionPlan make_plan(const faiss::Index& index, const Workload* workload,
                        const PartitionOptions& options, const ScanCost& lambda) {
  const faiss::IndexIVF* ivf = &ivf_of(index, "make_plan");
  std::vector<int64_t> sizes(ivf->nlist);
  for (size_t j = 0; j < ivf->nlist; ++j) sizes[j] = static_cast<int64_t>(ivf->invlists->list_size(j));
  return make_plan(index, sizes, workload, options, lambda);
}

PartitionPlan make_plan(const faiss::Index& index, const std::vector<int64_t>& sizes,
                        const Workload* workload, const PartitionOptions& options,
                        const ScanCost& lambda) {
  const faiss::IndexIVF* ivf = &ivf_of(index, "make_plan");
  const int nlist = static_cast<int>(ivf->nlist);
  if (sizes.size() != ivf->nlist)
    throw std::invalid_argument("make_plan: " + std::to_string(sizes.size()) + " list sizes for " +
                                std::to_string(nlist) + " lists");
  if (options.shards < 1 || options.shards > nlist)
    throw std::invalid_argument("partition.shards is " + std::to_string(options.shards) +
                                ", but the index has " + std::to_string(nlist) +
                                " lists: each shard owns whole lists (at most nlist shards)");
  PartitionPlan plan;
  plan.nlist = nlist;
  plan.shards = options.shards;
  plan.nprobe = options.nprobe;
  plan.scan_cost = lambda;
  std::vector<double> access;
  ProbedLists probed;
  if (workload != nullptr) {
    const std::vector<float> wq = to_ivf_space(index, workload->nq, workload->queries.data());
    access = access_frequency(*ivf->quantizer, wq.data(), workload->nq, workload->weights,
                              options.nprobe);
    if (options.colocate_slack >= 0)
      probed = probed_lists(*ivf->quantizer, wq.data(), workload->nq, workload->weights,
                            options.nprobe, kColocateQueries);
    plan.workload = workload->source;
    plan.workload_queries = workload->nq;
  } else {
    access.assign(nlist, static_cast<double>(std::min(options.nprobe, nlist)) / nlist);
  }
  const std::vector<double> cost = expected_costs(access, sizes, lambda);
  const std::vector<double> by_count(sizes.begin(), sizes.end());
  const auto count_placement = place_lpt(by_count, options.shards, options.replicate_hot);
  auto placement = count_placement;
  plan.count_balanced_max_over_mean_cost =
      max_over_mean(shard_loads(count_placement, cost, options.shards));
  plan.max_over_mean_cost = plan.count_balanced_max_over_mean_cost;
  if (workload != nullptr) {
    auto cost_placement = place_lpt(cost, options.shards, options.replicate_hot);
    const double m = max_over_mean(shard_loads(cost_placement, cost, options.shards));
    if (m <= plan.count_balanced_max_over_mean_cost) {
      placement = std::move(cost_placement);
      plan.max_over_mean_cost = m;
      plan.balance = "cost";
    }
    if (probed.queries() > 0) {
      plan.colocate_slack = options.colocate_slack;
      plan.lpt_shards_per_query = shards_per_query(probed, placement);
      plan.shards_per_query = plan.lpt_shards_per_query;
      // The greedy fills shards up to its cap, so its balance lands near 1 + slack: when that
      // is worse than count balance, tighter caps (slack / 2, / 4, then 0) are tried.
      bool tried_zero = false;
      for (double slack : {1.0, 0.5, 0.25, 0.0}) {
        slack *= options.colocate_slack;
        if (slack == 0 && tried_zero) break;  // colocate_slack 0: one try
        tried_zero = slack == 0;
        auto colocated =
            place_colocated(cost, probed, options.shards, options.replicate_hot, slack);
        const double mc = max_over_mean(shard_loads(colocated, cost, options.shards));
        const double spq = shards_per_query(probed, colocated);
        if (spq < plan.shards_per_query && mc <= plan.count_balanced_max_over_mean_cost &&
            (mc <= 1 + options.colocate_slack || mc <= plan.max_over_mean_cost)) {
          placement = std::move(colocated);
          plan.max_over_mean_cost = mc;
          plan.balance = "cost";
          plan.colocated = true;
          plan.colocate_slack = slack;
          plan.shards_per_query = spq;
          break;
        }
      }
    }
  }
  plan.lists.resize(nlist);
  for (int j = 0; j < nlist; ++j) plan.lists[j] = {sizes[j], access[j], cost[j], placement[j]};
  plan.expected_cost_per_query = std::accumulate(cost.begin(), cost.end(), 0.0);
  return plan;
}

std::unique_ptr<faiss::Index> make_shard_index(const faiss::Index& merged,
                                               const std::vector<char>& empty,
                                               const PartitionPlan& plan, int shard) {
  std::unique_ptr<faiss::Index> out = io::deserialize_index(empty);
  faiss::IndexIVF& dst = ivf_of(*out, "partition");
  const faiss::IndexIVF* src = find_ivf(&merged);
  if (src == nullptr || src->nlist != dst.nlist || static_cast<int>(dst.nlist) != plan.nlist ||
      src->code_size != dst.code_size)
    throw std::invalid_argument("make_shard_index: the index does not match the plan");
  if (dst.ntotal != 0) throw std::invalid_argument("make_shard_index: the template is not empty");
  int64_t total = 0;
  for (int j : plan.lists_of_shard(shard)) {
    const size_t n = src->invlists->list_size(j);
    if (n == 0) continue;
    faiss::InvertedLists::ScopedIds ids(src->invlists, j);
    faiss::InvertedLists::ScopedCodes codes(src->invlists, j);
    dst.invlists->add_entries(j, n, ids.get(), codes.get());
    total += static_cast<int64_t>(n);
  }
  set_ntotal(*out, total);
  return out;
}

std::string shard_file_name(int shard) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "shards/shard-%04d.faiss", shard);
  return buf;
}

}  // namespace sf::stages
