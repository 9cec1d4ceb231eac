// The merge stage (pipeline/index_build.h): the shards become index.faiss on rank 0, and with
// partition.shards the sharded layout (shards/, plan.json).
#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <filesystem>

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
  const runtime::PartitionConfig& p = options.config().partition;
  // Co-location changes which shard holds a list: the shard files, written with the merge.
  const bool colocate = options.read("partition.colocate", p.colocate);
  const double slack = options.read("partition.colocate_slack", p.colocate_slack);
  colocate_slack_ = colocate ? slack : -1;
}

void MergeStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  faiss::Index& index = *build_.index;  // the trained index; the rows are in the pieces
  if (partition_.options().shards > 0) {
    // The sharded layout's plan places whole lists by their sizes and scan costs: it is made
    // from the merged index on rank 0 (not yet written collectively), so the shards are
    // loaded from their pieces first.
    cluster::run_local_phase(comm, "merge: read pieces", [&] {
      for (const std::string& piece : build_.pieces)
        stages::append_shard(index, runtime::read_bytes(piece));
    });
    build_.ntotal = stages::merge_shards(comm, index);
    build_.merged = true;
    return;
  }
  // Every rank writes its lists' codes and ids, read from its pieces, into index.faiss.tmp
  // (published by save()).
  const std::string tmp = context.checkpoints.path(kIndexTmpFile);
  std::unique_ptr<stages::ListSource> lists;
  cluster::run_local_phase(comm, "merge: read pieces", [&] {
    const faiss::IndexIVF& ivf = stages::ivf_of(index, "merge");
    lists = stages::lists_in_pieces(build_.pieces, ivf.nlist, ivf.code_size);
  });
  try {
    const stages::MergedIndex merged =
        stages::write_merged_index(comm, index, *lists, tmp, kMergeRoundBytes);
    build_.ntotal = merged.ntotal;
    written_ = merged;
  } catch (...) {
    std::error_code ec;
    if (comm.rank() == 0) std::filesystem::remove(tmp, ec);  // nothing half-written stays
    throw;
  }
  build_.merged = false;  // the merged index is in the file, on no rank
}

runtime::StageOutputs MergeStage::save(cluster::Comm& comm,
                                        const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  const std::string& dir = context.checkpoints.run_dir();
  const faiss::Index& index = *build_.index;
  // An eval.json of an earlier index would read like this one's result.
  runtime::remove_owned(dir, "eval.json");
  context.checkpoints.forget("eval");
  const std::string index_path = context.checkpoints.path(kIndexFile);
  const faiss::IndexIVF* ivf = stages::find_ivf(&index);
  build_.nlist = static_cast<int64_t>(ivf->nlist);
  double imbalance = 0;
  if (build_.merged) {
    io::write_index_file(index, index_path);
    imbalance = ivf->invlists->imbalance_factor();
  } else {
    io::publish_file(index_path, [&](const std::string& tmp) {
      std::filesystem::rename(context.checkpoints.path(kIndexTmpFile), tmp);
    });
    double sum = 0, squares = 0;  // FAISS's imbalance factor of the merged lists
    for (int64_t n : written_.list_sizes) {
      sum += static_cast<double>(n);
      squares += static_cast<double>(n) * static_cast<double>(n);
    }
    imbalance = sum > 0 ? squares * static_cast<double>(ivf->nlist) / (sum * sum) : 0;
  }
  spdlog::info("wrote {}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes{}", index_path,
               build_.ntotal, ivf->nlist, imbalance, std::filesystem::file_size(index_path),
               build_.merged ? "" : " (every rank its own lists, MPI-IO)");

  std::vector<std::string> outputs = {kIndexFile};
  if (partition_.options().shards > 0) {
    stages::PartitionOptions popt = partition_.options();
    popt.colocate_slack = colocate_slack_;
    const stages::Workload* workload = build_.workload ? &*build_.workload : nullptr;
    stages::PartitionPlan plan = stages::make_plan(index, workload, popt, build_.partition.scan_cost);
    plan.repartition = build_.partition;
    std::filesystem::create_directories(dir + "/shards");
    for (int s = 0; s < plan.shards; ++s) {
      const std::unique_ptr<faiss::Index> shard =
          stages::make_shard_index(index, build_.empty_index, plan, s);
      io::write_index_file(*shard, dir + "/" + stages::shard_file_name(s));
      outputs.push_back(stages::shard_file_name(s));
    }
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
          {{"ntotal", build_.ntotal}, {"nlist", build_.nlist}, {"partition", build_.plan_summary}}};
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
