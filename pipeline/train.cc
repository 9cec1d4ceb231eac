// The train stage (pipeline/index_build.h): stages::train_index with the k-means stop point and
// its saved state, trained.faiss as the checkpoint.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "cluster/archive.h"
#include "io/atomic_file.h"
#include "io/index_file.h"
#include "runtime/memory_budget.h"
#include "runtime/stop.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {
namespace {

// Collective. The k-means state a stopped train saved, when --resume is set and its marker
// verifies (rank 0 checks and reads it; every rank gets it); nullopt otherwise.
std::optional<stages::KMeansState> read_kmeans_state(cluster::Comm& comm,
                                                     const runtime::Checkpoints& checkpoints,
                                                     const runtime::Fingerprint& fp,
                                                     bool resume) {
  if (!resume) return std::nullopt;
  cluster::Bytes bytes;
  cluster::run_local_phase(comm, "train: read k-means checkpoint", [&] {
    if (comm.rank() != 0) return;
    const std::string why = checkpoints.verify(fp);
    if (why.empty()) {
      bytes = runtime::read_bytes(checkpoints.path(kKMeansStateFile));
    } else if (why != runtime::Checkpoints::kNoMarker) {
      spdlog::warn("{}: not continued, k-means starts afresh: {}", fp.stage(), why);
    }
  });
  comm.broadcast(bytes, 0);
  if (bytes.empty()) return std::nullopt;
  std::optional<stages::KMeansState> state;
  cluster::run_local_phase(comm, "train: read k-means checkpoint", [&] {
    try {
      state = stages::decode_kmeans_state(bytes);
    } catch (const cluster::ArchiveVersionError& e) {
      // Another build's format (every rank sees the same bytes): k-means starts afresh.
      if (comm.rank() == 0)
        spdlog::warn("{}: not continued, k-means starts afresh: {}: {}", fp.stage(),
                     checkpoints.path(kKMeansStateFile), e.what());
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(checkpoints.path(kKMeansStateFile) + ": " + e.what());
    }
  });
  return state;
}

}  // namespace

std::unique_ptr<faiss::Index> train_checkpointed(cluster::Comm& comm,
                                                 const runtime::Checkpoints& checkpoints,
                                                 const runtime::Fingerprint& train_fp,
                                                 bool resume, io::VectorCorpus& rows,
                                                 cluster::RowRange range,
                                                 stages::TrainOptions options,
                                                 stages::TrainReport* report,
                                                 const stages::ProgressFn& progress) {
  options.stop_requested = runtime::stop_requested;
  const runtime::Fingerprint kmeans_fp = train_fp.for_stage("train-kmeans");
  const std::optional<stages::KMeansState> saved =
      read_kmeans_state(comm, checkpoints, kmeans_fp, resume);
  if (saved) {
    options.resume_kmeans = &*saved;
    if (comm.rank() == 0)
      spdlog::info("train: k-means continues from iteration {} of {} ({}, marker verified)",
                   saved->iteration, options.kmeans_iterations, kKMeansStateFile);
  }
  std::unique_ptr<faiss::Index> index;
  try {
    index = stages::train_index(comm, rows, range, options, report, progress);
  } catch (const stages::KMeansStopped& stopped) {
    // Every rank is here (the stop was agreed at an iteration boundary). Rank 0 saves the
    // state, then all stop; a marker that cannot be written fails the run instead.
    const stages::KMeansState& state = stopped.state();
    cluster::run_local_phase(comm, "train: save k-means state", [&] {
      if (comm.rank() != 0) return;
      checkpoints.forget(kmeans_fp.stage());  // an older state must not verify meanwhile
      const cluster::Bytes bytes = stages::encode_kmeans_state(state);
      io::publish_bytes(checkpoints.path(kKMeansStateFile), bytes.data(), bytes.size());
      checkpoints.mark_complete(kmeans_fp, {kKMeansStateFile},
                                {{"iteration", state.iteration},
                                 {"iterations", options.kmeans_iterations}});
      spdlog::info("train: saved the k-means state after iteration {} of {} to {}",
                   state.iteration, options.kmeans_iterations, kKMeansStateFile);
    });
    throw runtime::Stopped("train: k-means (after iteration " + std::to_string(state.iteration) +
                            " of " + std::to_string(options.kmeans_iterations) + ")");
  }
  spdlog::info(
      "train: nlist {}, k-means on {} sample rows ({} here), codebooks on {} rows, {} empty "
      "clusters split",
      report->nlist, report->sample_rows, report->local_sample_rows, report->codebook_rows,
      report->empty_clusters_split);
  return index;
}

stages::TrainReport trained_report(const nlohmann::json& info) {
  stages::TrainReport r;
  if (!info.is_object()) return r;
  r.nlist = info.value("nlist", 0);
  r.sample_rows = info.value("sample_rows", int64_t{0});
  r.codebook_rows = info.value("codebook_rows", int64_t{0});
  r.empty_clusters_split = info.value("empty_clusters_split", 0);
  r.objective = info.value("kmeans_objective", std::vector<double>{});
  return r;
}

std::unique_ptr<faiss::Index> load_trained(cluster::Comm& comm,
                                           const runtime::Checkpoints& checkpoints) {
  cluster::Bytes bytes;
  cluster::run_local_phase(comm, "train: read checkpoint", [&] {
    if (comm.rank() == 0) bytes = runtime::read_bytes(checkpoints.path(kTrainedFile));
  });
  comm.broadcast(bytes, 0);
  std::unique_ptr<faiss::Index> index;
  cluster::run_local_phase(comm, "train: read checkpoint",
                           [&] { index = io::deserialize_index(bytes); });
  return index;
}

// The config keys the trained index depends on (not threads or batch sizes: the results are
// the same for any; not the rank count: train is identical for any number of ranks).
void TrainStage::configure(runtime::StageOptions& options) {
  const runtime::IndexConfig& c = options.config().index;
  options_.factory = options.read("index.factory", c.factory);
  options_.inner_product = options.read("index.metric", c.metric) == "ip";
  options_.train_size = options.read("index.train_size", c.train_size);
  options_.kmeans_iterations = options.read("index.kmeans_iterations", c.kmeans_iterations);
  options_.codebook_sample = options.read("index.codebook_sample", c.codebook_sample);
  options_.seed = options.read("seed", options.config().seed);
  if (!build_.inputs.empty()) options.input_files(build_.inputs);
}

void check_train_budget(cluster::Comm& comm, const runtime::Config& config,
                        const io::VectorCorpus& rows, const stages::TrainOptions& options,
                        const runtime::MemoryBudget& budget) {
  stages::TrainNeeds needs;
  try {
    const auto index = stages::make_ivf_index(rows.dim(), options.factory, options.inner_product);
    needs = stages::train_needs(*index, rows.rows(), rows.dim(), comm.size(),
                                omp_get_max_threads(), options);
  } catch (const std::exception&) {
    // A factory that does not make an IVF index: train_index says so, agreed.
  }
  // The ranks' threads may differ: the most any rank needs, the same answer everywhere.
  const auto need = static_cast<uint64_t>(comm.max(static_cast<double>(needs.bytes)));
  if (budget.bytes == 0 || need <= budget.bytes) return;
  std::string what = "index.train_size: the training sample of " +
                     std::to_string(needs.sample_rows) + " rows x " + std::to_string(rows.dim()) +
                     " dims (" + std::to_string(needs.local_rows) + " rows on the rank that holds most";
  if (needs.codebook_rows > 0)
    what += ", a codebook sample of " + std::to_string(needs.codebook_rows) + " rows on rank 0";
  what += ", the k-means buffers)";
  throw runtime::ConfigError(
      config.source + ": " +
      runtime::over_budget_message(what, need, budget,
                                   "; lower index.train_size (default 256 x nlist) or raise "
                                   "resources.memory_per_rank"));
}

void TrainStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  stages::TrainOptions topt = options_;
  if (!build_.factory.empty()) topt.factory = build_.factory;
  // index.factory auto: the tune stage ran this k-means already (on the same sample; for an
  // OPQ choice, turned by the rotation it trained, which train keeps): continue from its end.
  if (build_.tuned_kmeans) topt.resume_kmeans = &*build_.tuned_kmeans;
  if (!build_.tuned_rotation.empty()) topt.opq_matrix = &build_.tuned_rotation;
  check_train_budget(comm, context.config, *build_.rows, topt, context.budget);
  if (comm.rank() == 0) topt.warn = [](const std::string& m) { spdlog::warn("train: {}", m); };
  build_.index = train_checkpointed(comm, context.checkpoints, context.fingerprint,
                                    context.config.resume, *build_.rows, build_.range, topt,
                                    &build_.train, context.progress);
  build_.nlist = build_.train.nlist;
  // The tuned nprobe goes into trained.faiss, and so into index.faiss's header.
  if (build_.tuned_nprobe > 0) stages::set_nprobe(build_.index.get(), build_.tuned_nprobe);
}

runtime::StageOutputs TrainStage::save(cluster::Comm& comm,
                                        const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  io::write_index_file(*build_.index, context.checkpoints.path(kTrainedFile));
  const stages::TrainReport& r = build_.train;
  return {{kTrainedFile},
          {{"nlist", r.nlist},
           {"sample_rows", r.sample_rows},
           {"codebook_rows", r.codebook_rows},
           {"empty_clusters_split", r.empty_clusters_split},
           {"kmeans_objective", r.objective}}};
}

void TrainStage::saved(const runtime::StageContext& context) {
  // The trained index supersedes a saved k-means state.
  context.checkpoints.forget("train-kmeans");
  std::filesystem::remove(context.checkpoints.path(kKMeansStateFile));
}

void TrainStage::load(cluster::Comm& comm, const runtime::StageContext& context,
                      const nlohmann::json& info) {
  build_.train = trained_report(info);
  build_.nlist = build_.train.nlist;
  build_.index = load_trained(comm, context.checkpoints);
}

void TrainStage::skip(const runtime::StageContext&, const nlohmann::json& info) {
  // A verified result does not need the training's record; its numbers may be unknown.
  build_.train = trained_report(info);
}

}  // namespace sf::pipeline
