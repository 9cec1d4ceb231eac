// Internal to jobs/: checkpoint steps that several jobs share (build, dedup, run), on top of
// pipeline/checkpoint.h.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "pipeline/checkpoint.h"
#include "io/vector_file.h"
#include "pipeline/config.h"
#include "stages/train.h"

namespace sf::jobs {

constexpr const char* kTrainedFile = "trained.faiss";

// A whole file in memory. Throws std::runtime_error naming the path.
cluster::Bytes read_bytes(const std::string& path);

// "<dir>/rank-RRRRR.sfar": a rank's checkpoint file of a stage whose outputs are per rank.
std::string rank_file(const std::string& dir, int rank);

// Collective, a safe point. Every rank publishes checkpoints.path(rank_file(dir, rank)) with
// write(temporary path); then rank 0 marks `fp` complete with every rank's file, and `extra`
// (run-dir-relative files rank 0 published inside `write`), as its outputs and `info` as its
// info. Throws cluster::PhaseError (some rank failed: no marker) or pipeline::Stopped (a stop
// request: after the marker is written) on every rank alike.
void checkpoint_rank_files(cluster::Comm& comm, const pipeline::Checkpoints& checkpoints,
                           const pipeline::Fingerprint& fp, const std::string& dir,
                           const std::function<void(const std::string&)>& write,
                           const nlohmann::json& info,
                           const std::vector<std::string>& extra = {});

// Collective (rank 0 does the work). First refuses, with a ConfigError on every rank and
// nothing removed, an input file inside any path below (pipeline::input_inside) or a path
// below that exists but shardforge did not make (pipeline::RunManifest::claim). Then claims
// them all in the manifest, creates the run directory (config.output.dir) and writes
// config.yaml. Removes `results` (run-dir-relative files or folders that a finished run
// publishes: nothing half-done may look like a result); without config.resume also
// `checkpoint_outputs` and every completion marker; with it, logs what status.json says of the
// previous run. Then creates `folders`. Removes only what shardforge made
// (RunManifest::remove). REQUIRES: pipeline::open_run_dir before (the lock).
void prepare_run_dir(cluster::Comm& comm, const pipeline::Config& config,
                     const pipeline::Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders);

// Rank 0 (local): publishes `index` as trained.faiss, then the marker of `fp` with `report`
// in its info. Throws naming the file.
void save_trained(const pipeline::Checkpoints& checkpoints, const pipeline::Fingerprint& fp,
                  const faiss::Index& index, const stages::TrainReport& report);
constexpr const char* kKMeansStateFile = "train-kmeans.sfkm";  // a stopped k-means

// Collective, the train stage of build and run: stages::train_index on this rank's `range` of
// `rows`, with a stop check at every k-means iteration boundary (pipeline::stop_requested).
//  - A stop: rank 0 publishes the k-means state as train-kmeans.sfkm with the marker
//    "train-kmeans" (train_fp's parts under that name), then every rank throws
//    pipeline::Stopped naming the iteration.
//  - With `resume`, a state whose marker verifies is continued (same result as uninterrupted);
//    one that does not, or is in a format this build does not read, is logged and k-means
//    starts afresh.
//  - Trained: rank 0 saves trained.faiss and the marker of `train_fp` (save_trained), removes
//    the state; a safe point.
// REQUIRES: report != nullptr. Throws as train_index (PhaseError, std::invalid_argument) alike
// on every rank.
std::unique_ptr<faiss::Index> train_checkpointed(cluster::Comm& comm,
                                                 const pipeline::Checkpoints& checkpoints,
                                                 const pipeline::Fingerprint& train_fp,
                                                 bool resume, io::VectorCorpus& rows,
                                                 cluster::RowRange range,
                                                 stages::TrainOptions options,
                                                 stages::TrainReport* report,
                                                 const stages::ProgressFn& progress);

// The report save_trained recorded (zeros for what `info` lacks).
stages::TrainReport trained_report(const nlohmann::json& info);
// Collective: trained.faiss on every rank (rank 0 reads, broadcasts). Agreed errors.
std::unique_ptr<faiss::Index> load_trained(cluster::Comm& comm,
                                           const pipeline::Checkpoints& checkpoints);

}  // namespace sf::jobs
