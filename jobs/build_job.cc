#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "jobs/corpus.h"
#include "jobs/jobs.h"
#include "pipeline/run_dir.h"
#include "stages/build.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/partition.h"
#include "stages/train.h"

namespace sf::jobs {
namespace {

// partition.workload (and its weights), checked against the corpus dimension. Local.
stages::Workload load_workload(const pipeline::Config& config, int dim) {
  const pipeline::PartitionConfig& p = config.partition;
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

stages::PartitionOptions partition_options(const pipeline::Config& config) {
  const pipeline::PartitionConfig& p = config.partition;
  stages::PartitionOptions o;
  o.nprobe = p.nprobe;
  o.shards = p.shards;
  o.replicate_hot = p.replicate_hot;
  o.max_nlist = p.max_nlist;
  o.tiers = p.tiers;
  o.scan_cost = p.scan_cost;
  o.kmeans_iterations = config.index.kmeans_iterations;
  o.seed = config.seed;
  o.batch_rows = config.input.batch_rows;
  return o;
}

}  // namespace

int build_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const std::string index_path = dir + "/index.faiss";
  const int threads = pipeline::choose_threads(config, comm);
  const auto progress = pipeline::make_progress_logger(comm.rank());
  pipeline::StageLog log;

  // The run directory: results of an earlier run are removed first, so a failed build never
  // leaves an index.faiss that looks like its result.
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    pipeline::make_run_dir(dir);
    for (const char* stale : {"index.faiss", "eval.json", "run.json", "plan.json", "search.json",
                              "search.h5"})
      std::filesystem::remove(dir + "/" + stale);
    std::filesystem::remove_all(dir + "/shards");
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });

  log.begin("open");
  OpenedCorpus opened = open_corpus(comm, config);
  io::VectorCorpus& corpus = *opened.corpus;
  const cluster::RowRange range = opened.range;
  cluster::run_local_phase(comm, "check index.factory", [&] {
    // Fails alike on every rank, before any collective of the training.
    // A bad value of index.factory is a config error: name the key and the config file.
    std::unique_ptr<faiss::Index> probe;
    try {
      probe = stages::make_ivf_index(corpus.dim(), config.index.factory,
                                     config.index.metric == "ip");
    } catch (const std::invalid_argument& e) {
      throw pipeline::ConfigError(config.source + ": " + e.what());
    }
    const auto nlist = static_cast<int64_t>(stages::find_ivf(probe.get())->nlist);
    if (corpus.rows() < nlist)
      throw pipeline::ConfigError(config.source + ": index.factory '" + config.index.factory +
                                  "' has " + std::to_string(nlist) + " lists, but the corpus (" +
                                  describe_paths(config.input.paths) + ") has only " +
                                  std::to_string(corpus.rows()) + " rows");
    if (config.index.train_size > 0 && config.index.train_size < nlist)
      throw pipeline::ConfigError(config.source + ": index.train_size " +
                                  std::to_string(config.index.train_size) +
                                  " is smaller than nlist " + std::to_string(nlist));
    const int64_t bound = config.partition.max_nlist > 0 ? config.partition.max_nlist : nlist;
    if (config.partition.shards > std::min(nlist, bound))
      throw pipeline::ConfigError(config.source + ": partition.shards " +
                                  std::to_string(config.partition.shards) + " is more than the " +
                                  std::to_string(std::min(nlist, bound)) +
                                  " lists of index.factory '" + config.index.factory +
                                  "': each shard owns whole lists");
    if (config.partition.shards == 0 && !config.partition.workload.empty())
      throw pipeline::ConfigError(config.source + ": partition.workload is set but partition.shards "
                                  "is 0: set partition.shards to build the sharded layout");
  });
  const bool sharded = config.partition.shards > 0;
  std::optional<stages::Workload> workload;  // rank 0
  cluster::run_local_phase(comm, "read partition.workload", [&] {
    if (comm.rank() == 0 && sharded && !config.partition.workload.empty())
      workload = load_workload(config, corpus.dim());
  });
  log.end();
  spdlog::info("corpus: {} rows x {} dims in {} file(s); {} rank(s) x {} thread(s); this rank: rows [{}, {})",
               corpus.rows(), corpus.dim(), corpus.num_files(), comm.size(), threads, range.begin,
               range.end);

  log.begin("train");
  stages::TrainOptions topt;
  topt.factory = config.index.factory;
  topt.inner_product = config.index.metric == "ip";
  topt.train_size = config.index.train_size;
  topt.kmeans_iterations = config.index.kmeans_iterations;
  topt.codebook_sample = config.index.codebook_sample;
  topt.seed = config.seed;
  stages::TrainReport treport;
  std::unique_ptr<faiss::Index> index = stages::train_index(comm, corpus, range, topt, &treport, progress);
  log.end();
  spdlog::info("train: nlist {}, k-means on {} sample rows ({} here), codebooks on {} rows, {} empty clusters split",
               treport.nlist, treport.sample_rows, treport.local_sample_rows, treport.codebook_rows,
               treport.empty_clusters_split);

  const stages::PartitionOptions popt = partition_options(config);
  stages::RepartitionReport preport;
  std::vector<char> empty_index;  // rank 0: the trained, empty index with the final lists
  if (sharded) {
    log.begin("partition");
    preport = stages::repartition_lists(comm, *index, corpus, range,
                                        workload ? &*workload : nullptr, popt, progress);
    if (comm.rank() == 0) empty_index = io::serialize_index(*index);
    log.end();
    spdlog::info("partition: scan cost {:.3g} + {:.3g} s/code ({}); nlist {} -> {}: hot tiers +{} list(s), cold tiers -{}; expected cost {:.3g} -> {:.3g} s/query (estimate){}",
                 preport.scan_cost.a, preport.scan_cost.b, preport.scan_cost.source,
                 preport.nlist_before, preport.nlist_after, preport.splits, preport.merges,
                 preport.cost_before, preport.cost_after,
                 preport.applied || !workload ? "" : ": lists kept");
  }

  log.begin("add");
  cluster::run_local_phase(comm, "add", [&] {
    stages::add_shard(*index, corpus, range, config.input.batch_rows, progress);
  });
  log.end();

  log.begin("merge");
  const int64_t ntotal = stages::merge_shards(comm, *index);
  log.end();

  log.begin("write");
  cluster::run_local_phase(comm, "write index", [&] {
    if (comm.rank() == 0) io::write_index_file(*index, index_path);
  });
  log.end();
  nlohmann::json plan_summary = nullptr;
  if (sharded) {
    log.begin("shards");
    cluster::run_local_phase(comm, "write shards", [&] {
      if (comm.rank() != 0) return;
      stages::PartitionPlan plan =
          stages::make_plan(*index, workload ? &*workload : nullptr, popt, preport.scan_cost);
      plan.repartition = preport;
      std::filesystem::create_directories(dir + "/shards");
      for (int s = 0; s < plan.shards; ++s) {
        const std::unique_ptr<faiss::Index> shard = stages::make_shard_index(*index, empty_index, plan, s);
        io::write_index_file(*shard, dir + "/" + stages::shard_file_name(s));
      }
      stages::write_plan(plan, dir + "/plan.json");  // last: its presence means the layout is whole
      spdlog::info("wrote {}/plan.json and {} shard(s): balance by {}, expected shard cost max/mean {:.3f} (count-balanced {:.3f})",
                   dir, plan.shards, plan.balance, plan.max_over_mean_cost,
                   plan.count_balanced_max_over_mean_cost);
      plan_summary = {{"plan", "plan.json"},
                      {"shards", plan.shards},
                      {"nlist", plan.nlist},
                      {"balance", plan.balance},
                      {"max_over_mean_cost", plan.max_over_mean_cost},
                      {"count_balanced_max_over_mean_cost", plan.count_balanced_max_over_mean_cost}};
    });
    log.end();
  }

  if (comm.rank() == 0) {
    const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
    spdlog::info("wrote {}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes", index_path,
                 ntotal, ivf->nlist, ivf->invlists->imbalance_factor(),
                 std::filesystem::file_size(index_path));
  }

  nlohmann::json summary = {{"rows", corpus.rows()},
                            {"dim", corpus.dim()},
                            {"factory", config.index.factory},
                            {"metric", config.index.metric},
                            {"nlist", static_cast<int64_t>(stages::find_ivf(index.get())->nlist)},
                            {"trained_nlist", treport.nlist},
                            {"train_sample_rows", treport.sample_rows},
                            {"codebook_rows", treport.codebook_rows},
                            {"kmeans_objective", treport.objective},
                            {"ntotal", ntotal},
                            {"index", "index.faiss"},
                            {"partition", plan_summary}};
  pipeline::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::jobs
