// The merge stage (pipeline/index_build.h): the shards become index.faiss (output.layout
// ondisk: with index.ivfdata), and with partition.shards the sharded layout (shards/,
// plan.json), every file written by all ranks at once.
#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "runtime/checkpoint.h"
#include "runtime/run_manifest.h"
#include "stages/ivf_index.h"
#include "stages/list_source.h"
#include "stages/merge.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {

void MergeStage::configure(runtime::StageOptions& options) {
  const runtime::Config& config = options.config();
  const runtime::PartitionConfig& p = config.partition;
  ondisk_ = options.read("output.layout", config.output.layout) == "ondisk";
  // Co-location changes which shard holds a list: the shard files, written with the merge.
  const bool colocate = options.read("partition.colocate", p.colocate);
  const double slack = options.read("partition.colocate_slack", p.colocate_slack);
  colocate_slack_ = colocate ? slack : -1;
}

void MergeStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  // Every rank writes its lists' codes and ids into index.faiss.tmp (or index.ivfdata.tmp),
  // and with partition.shards into each shard file under shards.tmp/ (published by save()).
  const runtime::Checkpoints& files = context.checkpoints;
  plan_ = stages::PartitionPlan();
  try {
    std::unique_ptr<stages::ListSource> lists;
    cluster::run_local_phase(comm, "merge: read pieces", [&] {
      const faiss::IndexIVF& ivf = stages::ivf_of(*build_.index, "merge");
      lists = stages::lists_in_pieces(build_.pieces, ivf.nlist, ivf.code_size);
    });
    const stages::GlobalLists global = stages::global_lists(comm, *lists);
    stages::MergedIndexFiles index{files.path(kIndexTmpFile), "", ""};
    if (ondisk_) index = {files.path(kIndexTmpFile), files.path(kIvfdataTmpFile), kIvfdataFile};
    written_ =
        stages::write_merged_index(comm, *build_.index, *lists, global, index, kMergeRoundBytes);
    build_.ntotal = written_.ntotal;
    stages::MergeSeconds seconds = written_.seconds;
    if (partition_.options().shards > 0) seconds += write_shards(comm, context, *lists, global);
    // The slowest rank's parts.
    double parts[] = {seconds.read, seconds.write, seconds.sync, seconds.check};
    comm.allreduce_max(parts, 4);
    spdlog::info("merge: read {:.2f} s, write {:.2f} s, sync {:.2f} s, check {:.2f} s (the "
                 "slowest rank's)", parts[0], parts[1], parts[2], parts[3]);
  } catch (...) {
    std::error_code ec;
    if (comm.rank() == 0)  // nothing half-written stays
      for (const char* tmp : {kIndexTmpFile, kIvfdataTmpFile, kShardsTmpDir})
        std::filesystem::remove_all(files.path(tmp), ec);
    throw;
  }
}

stages::MergeSeconds MergeStage::write_shards(cluster::Comm& comm,
                                              const runtime::StageContext& context,
                                              const stages::ListSource& lists,
                                              const stages::GlobalLists& global) {
  // The plan places whole lists by their global sizes (and, with a workload, their scan
  // costs): rank 0 makes it (it holds the workload) and sends the placement to the others.
  const std::string dir = context.checkpoints.path(kShardsTmpDir);
  cluster::Bytes placement;
  cluster::run_local_phase(comm, "merge: plan", [&] {
    if (comm.rank() != 0) return;
    stages::PartitionOptions popt = partition_.options();
    popt.colocate_slack = colocate_slack_;
    const stages::Workload* workload = build_.workload ? &*build_.workload : nullptr;
    plan_ = stages::make_plan(*build_.index, global.sizes, workload, popt,
                              build_.partition.scan_cost);
    plan_.repartition = build_.partition;
    const std::string json = stages::plan_to_json(plan_).dump();
    placement.assign(json.begin(), json.end());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  });
  comm.broadcast(placement, 0);
  stages::PartitionPlan plan = plan_;
  if (comm.rank() != 0)
    plan = stages::plan_from_json(nlohmann::json::parse(placement.begin(), placement.end()));
  // One collective pass per shard file: the ranks holding its lists write them.
  stages::MergeSeconds seconds;
  shard_digests_.clear();
  for (int s = 0; s < plan.shards; ++s) {
    const std::vector<int> only = plan.lists_of_shard(s);
    const std::string name = std::filesystem::path(stages::shard_file_name(s)).filename().string();
    const stages::MergedIndex shard = stages::write_merged_index(
        comm, *build_.index, lists, global, {dir + "/" + name, "", ""}, kMergeRoundBytes, &only);
    seconds += shard.seconds;
    shard_digests_.push_back(shard.digest);
  }
  return seconds;
}

runtime::StageOutputs MergeStage::save(cluster::Comm& comm,
                                        const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  const runtime::Checkpoints& files = context.checkpoints;
  const std::string& dir = files.run_dir();
  // An eval.json of an earlier index would read like this one's result.
  runtime::remove_owned(dir, "eval.json");
  files.forget("eval");
  const std::string index_path = files.path(kIndexFile);
  build_.nlist = static_cast<int64_t>(written_.list_sizes.size());
  auto publish = [&](const std::string& from, const std::string& to) {
    io::publish_file(files.path(to), [&](const std::string& tmp) {
      std::filesystem::rename(files.path(from), tmp);
    });
  };
  std::vector<std::string> outputs = {kIndexFile};
  // The files the ranks wrote were read back whole by their check: the marker takes the XXH3
  // of that pass instead of reading them once more.
  std::map<std::string, io::FileDigest> digests = {{ondisk_ ? kIvfdataFile : kIndexFile,
                                                    written_.digest}};
  if (ondisk_) {  // the lists first: index.faiss names them
    publish(kIvfdataTmpFile, kIvfdataFile);
    outputs.push_back(kIvfdataFile);
  }
  publish(kIndexTmpFile, kIndexFile);
  const double imbalance = stages::list_imbalance(written_.list_sizes);
  spdlog::info("wrote {}{}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes (every rank its "
               "own lists, MPI-IO)", index_path, ondisk_ ? " and index.ivfdata" : "",
               build_.ntotal, build_.nlist, imbalance, written_.bytes);

  if (partition_.options().shards > 0) {
    const stages::PartitionPlan& plan = plan_;
    std::filesystem::create_directories(dir + "/shards");
    for (int s = 0; s < plan.shards; ++s) {
      const std::string name = stages::shard_file_name(s);  // "shards/..."
      publish(kShardsTmpDir + name.substr(name.find('/')), name);
      outputs.push_back(name);
      digests[name] = shard_digests_.at(static_cast<size_t>(s));
    }
    std::filesystem::remove(files.path(kShardsTmpDir));
    stages::write_plan(plan, dir + "/plan.json");  // last: its presence means the layout is whole
    outputs.push_back("plan.json");
    spdlog::info("wrote {}/plan.json and {} shard(s): balance by {}{}, expected shard cost max/mean {:.3f} (count-balanced {:.3f})",
                 dir, plan.shards, plan.balance, plan.colocated ? " with co-location" : "",
                 plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost);
    if (plan.shards_per_query > 0)
      spdlog::info("workload queries reach {:.2f} shard(s) each (without co-location: {:.2f})",
                   plan.shards_per_query, plan.lpt_shards_per_query);
    build_.plan_summary = {{"plan", "plan.json"},
                           {"shards", plan.shards},
                           {"nlist", plan.nlist},
                           {"balance", plan.balance},
                           {"max_over_mean_cost", plan.max_over_mean_cost},
                           {"count_balanced_max_over_mean_cost", plan.count_balanced_max_over_mean_cost},
                           {"colocated", plan.colocated},
                           {"shards_per_query", plan.shards_per_query}};
  }
  return {outputs,
          {{"ntotal", build_.ntotal}, {"nlist", build_.nlist}, {"partition", build_.plan_summary}},
          digests};
}

void MergeStage::saved(const runtime::StageContext& context) {
  // index.faiss is complete: the pieces have served their purpose.
  runtime::remove_owned(context.checkpoints.run_dir(), kPieceDir);
  context.checkpoints.forget_all("add/");
}

void MergeStage::load(cluster::Comm&, const runtime::StageContext&, const nlohmann::json& info) {
  build_.ntotal = info.value("ntotal", int64_t{0});
  build_.nlist = info.value("nlist", int64_t{0});
  build_.plan_summary = info.value("partition", nlohmann::json());
}

}  // namespace sf::pipeline
