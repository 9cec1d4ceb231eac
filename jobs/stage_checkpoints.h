// Internal to jobs/: checkpoint steps that several jobs share (build, dedup, run), on top of
// pipeline/checkpoint.h.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "pipeline/checkpoint.h"
#include "pipeline/config.h"
#include "pipeline/stage_runner.h"

namespace sf::jobs {

using pipeline::read_bytes;

using pipeline::rank_file;

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

}  // namespace sf::jobs
