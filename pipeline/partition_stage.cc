// The partition stage (pipeline/index_build.h): the lists re-sized for partition.workload.
#include <spdlog/spdlog.h>

#include "pipeline/corpus.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {
namespace {

stages::Workload load_workload(const runtime::Config& config, int dim) {
  const runtime::PartitionConfig& p = config.partition;
  auto open = [&](const std::string& path, const std::string& dataset, const char* key) {
    try {
      const io::VectorFormat format = io::detect_vector_format(path);
      return std::make_unique<io::VectorCorpus>(
          std::vector<std::string>{path}, format, format == io::VectorFormat::kHdf5 ? dataset : "");
    } catch (const io::InputError& e) {
      throw io::InputError(std::string(key) + " (" + config.source + "): " + e.what());
    }
  };
  stages::Workload w;
  w.source = p.workload;
  auto file = open(p.workload, p.workload_dataset, "partition.workload");
  if (file->dim() != dim)
    throw io::InputError(p.workload + ": partition.workload has dimension " +
                         std::to_string(file->dim()) + ", the corpus (" +
                         describe_paths(config.input.paths) + ") " + std::to_string(dim));
  w.nq = file->rows();
  if (w.nq == 0) throw io::InputError(p.workload + ": partition.workload has no queries");
  w.queries.resize(static_cast<size_t>(w.nq) * dim);
  file->read(0, w.nq, w.queries.data());
  if (p.weights.empty()) return w;
  auto weights = open(p.weights, p.weights_dataset, "partition.weights");
  if (weights->dim() != 1 || weights->rows() != w.nq)
    throw io::InputError(p.weights + ": partition.weights must be " + std::to_string(w.nq) +
                         " x 1 (one weight per workload query), got " +
                         std::to_string(weights->rows()) + " x " + std::to_string(weights->dim()));
  w.weights.resize(static_cast<size_t>(w.nq));
  weights->read(0, w.nq, w.weights.data());
  double total = 0;
  for (int64_t i = 0; i < w.nq; ++i) {
    if (w.weights[i] < 0)
      throw io::InputError(p.weights + ": row " + std::to_string(i) + ": negative weight");
    total += w.weights[i];
  }
  if (!(total > 0)) throw io::InputError(p.weights + ": the weights sum to 0");
  return w;
}

}  // namespace

// What the inverted lists depend on beyond training: the partition keys and workload
// (partition.colocate* only place lists on shards: the merge reads them).
void PartitionStage::configure(runtime::StageOptions& options) {
  const runtime::Config& config = options.config();
  const runtime::PartitionConfig& p = config.partition;
  options.read("partition.workload", p.workload);
  options.read("partition.workload_dataset", p.workload_dataset);
  options.read("partition.weights", p.weights);
  options.read("partition.weights_dataset", p.weights_dataset);
  options_.shards = options.read("partition.shards", p.shards);
  options_.nprobe = options.read("partition.nprobe", p.nprobe);
  options_.max_nlist = options.read("partition.max_nlist", p.max_nlist);
  options_.tiers = options.read("partition.tiers", p.tiers);
  options_.replicate_hot = options.read("partition.replicate_hot", p.replicate_hot);
  options_.scan_cost = options.read("partition.scan_cost", p.scan_cost);
  options_.kmeans_iterations = options.read("index.kmeans_iterations", config.index.kmeans_iterations);
  options_.seed = options.read("seed", config.seed);
  options_.batch_rows = config.input.batch_rows;  // the same lists for any batch size
  // Co-location places lists on shards, after the add: the merge fingerprints these keys.
  options_.colocate_slack = p.colocate ? p.colocate_slack : -1;
  const std::pair<const char*, const std::string*> files[] = {{"partition.workload", &p.workload},
                                                              {"partition.weights", &p.weights}};
  for (const auto& [key, path] : files) {
    if (path->empty()) continue;
    try {
      options.input_files({*path});
    } catch (const std::runtime_error& e) {
      throw io::InputError(std::string(key) + " (" + config.source + "): " + e.what());
    }
  }
}

void PartitionStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  if (options_.shards == 0) return;
  const runtime::Config& config = context.config;
  cluster::run_local_phase(comm, "read partition.workload", [&] {
    if (comm.rank() == 0 && !config.partition.workload.empty())
      build_.workload = load_workload(config, build_.rows->dim());
  });
  // Its batches as the add's, within the budget (the same lists for any batch size).
  stages::PartitionOptions options = options_;
  options.batch_rows =
      plan_add_from_budget(comm, config, *build_.index, context.budget).batch_rows;
  stages::RepartitionReport& r = build_.partition;
  r = stages::repartition_lists(comm, *build_.index, *build_.rows, build_.range,
                                build_.workload ? &*build_.workload : nullptr, options,
                                context.progress);
  spdlog::info("partition: scan cost {:.3g} + {:.3g} s/code ({}); nlist {} -> {}: hot tiers +{} list(s), cold tiers -{}; expected cost {:.3g} -> {:.3g} s/query (estimate){}",
               r.scan_cost.a, r.scan_cost.b, r.scan_cost.source, r.nlist_before, r.nlist_after,
               r.splits, r.merges, r.cost_before, r.cost_after,
               r.applied || !build_.workload ? "" : ": lists kept");
}

}  // namespace sf::pipeline
