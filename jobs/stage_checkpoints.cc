#include "jobs/stage_checkpoints.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>

#include "cluster/archive.h"
#include "io/atomic_file.h"
#include "io/index_file.h"
#include "pipeline/run_dir.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stop.h"

namespace sf::jobs {

cluster::Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  cluster::Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return bytes;
}

std::string rank_file(const std::string& dir, int rank) {
  char name[32];
  std::snprintf(name, sizeof(name), "/rank-%05d.sfar", rank);
  return dir + name;
}

void checkpoint_rank_files(cluster::Comm& comm, const pipeline::Checkpoints& checkpoints,
                           const pipeline::Fingerprint& fp, const std::string& dir,
                           const std::function<void(const std::string&)>& write,
                           const nlohmann::json& info, const std::vector<std::string>& extra) {
  cluster::run_local_phase(comm, fp.stage() + ": write checkpoint", [&] {
    io::publish_file(checkpoints.path(rank_file(dir, comm.rank())), write);
  });
  pipeline::run_step(comm, fp.stage() + ": checkpoint", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::string> outputs;
    for (int r = 0; r < comm.size(); ++r) outputs.push_back(rank_file(dir, r));
    outputs.insert(outputs.end(), extra.begin(), extra.end());
    checkpoints.mark_complete(fp, outputs, info);
  });
}

void prepare_run_dir(cluster::Comm& comm, const pipeline::Config& config,
                     const pipeline::Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders) {
  namespace fs = std::filesystem;
  const std::string& dir = config.output.dir;
  // Everything this run may replace or clean, claimed before anything is removed.
  std::vector<std::string> layout = {"config.yaml", "checkpoints"};
  for (const auto* list : {&results, &checkpoint_outputs, &folders})
    layout.insert(layout.end(), list->begin(), list->end());
  std::optional<pipeline::RunManifest> manifest;
  std::string refusal;
  cluster::run_local_phase(comm, "check output.dir", [&] {
    if (comm.rank() != 0) return;
    manifest = pipeline::RunManifest::load(dir);
    std::vector<std::string> replaced = layout;
    replaced.insert(replaced.end(), {".shardforge", "status.json", "run.json"});
    refusal = pipeline::input_inside(config, manifest->command(), replaced);
    if (refusal.empty()) refusal = manifest->claim(layout);
  });
  pipeline::agree_refusal(comm, refusal);
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    pipeline::make_run_dir(dir);
    manifest->save();
    for (const std::string& rel : results) manifest->remove(rel);
    if (config.resume) {
      const std::string previous = pipeline::describe_previous_run(dir);
      spdlog::info("resume: {}", previous.empty() ? "no earlier run in " + dir : previous);
    } else {
      for (const std::string& rel : checkpoint_outputs) manifest->remove(rel);
      checkpoints.forget_all();
    }
    for (const std::string& rel : folders) fs::create_directories(checkpoints.path(rel));
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });
}

namespace {

// Collective. The k-means state a stopped train saved, when --resume is set and its marker
// verifies (rank 0 checks and reads it; every rank gets it); nullopt otherwise.
std::optional<stages::KMeansState> read_kmeans_state(cluster::Comm& comm,
                                                     const pipeline::Checkpoints& checkpoints,
                                                     const pipeline::Fingerprint& fp,
                                                     bool resume) {
  if (!resume) return std::nullopt;
  cluster::Bytes bytes;
  cluster::run_local_phase(comm, "train: read k-means checkpoint", [&] {
    if (comm.rank() != 0) return;
    const std::string why = checkpoints.verify(fp);
    if (why.empty()) {
      bytes = read_bytes(checkpoints.path(kKMeansStateFile));
    } else if (why != pipeline::Checkpoints::kNoMarker) {
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
                                                 const pipeline::Checkpoints& checkpoints,
                                                 const pipeline::Fingerprint& train_fp,
                                                 bool resume, io::VectorCorpus& rows,
                                                 cluster::RowRange range,
                                                 stages::TrainOptions options,
                                                 stages::TrainReport* report,
                                                 const stages::ProgressFn& progress) {
  options.stop_requested = pipeline::stop_requested;
  const pipeline::Fingerprint kmeans_fp = train_fp.for_stage("train-kmeans");
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
    throw pipeline::Stopped("train: k-means (after iteration " + std::to_string(state.iteration) +
                            " of " + std::to_string(options.kmeans_iterations) + ")");
  }
  spdlog::info(
      "train: nlist {}, k-means on {} sample rows ({} here), codebooks on {} rows, {} empty "
      "clusters split",
      report->nlist, report->sample_rows, report->local_sample_rows, report->codebook_rows,
      report->empty_clusters_split);
  // A safe point: a stop request received while training is honoured once it is saved.
  pipeline::run_step(comm, "train: checkpoint", [&] {
    if (comm.rank() != 0) return;
    save_trained(checkpoints, train_fp, *index, *report);
    // The trained index supersedes a saved k-means state.
    checkpoints.forget(kmeans_fp.stage());
    std::filesystem::remove(checkpoints.path(kKMeansStateFile));
  });
  return index;
}

void save_trained(const pipeline::Checkpoints& checkpoints, const pipeline::Fingerprint& fp,
                  const faiss::Index& index, const stages::TrainReport& report) {
  io::write_index_file(index, checkpoints.path(kTrainedFile));
  checkpoints.mark_complete(fp, {kTrainedFile},
                            {{"nlist", report.nlist},
                             {"sample_rows", report.sample_rows},
                             {"codebook_rows", report.codebook_rows},
                             {"empty_clusters_split", report.empty_clusters_split},
                             {"kmeans_objective", report.objective}});
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
                                           const pipeline::Checkpoints& checkpoints) {
  cluster::Bytes bytes;
  cluster::run_local_phase(comm, "train: read checkpoint", [&] {
    if (comm.rank() == 0) bytes = read_bytes(checkpoints.path(kTrainedFile));
  });
  comm.broadcast(bytes, 0);
  std::unique_ptr<faiss::Index> index;
  cluster::run_local_phase(comm, "train: read checkpoint",
                           [&] { index = io::deserialize_index(bytes); });
  return index;
}

}  // namespace sf::jobs
