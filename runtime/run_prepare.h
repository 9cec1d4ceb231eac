// Preparing a command's run directory before its stages run (ownership, config.yaml, what an
// earlier run left).
#pragma once

#include <string>
#include <vector>

#include "cluster/comm.h"
#include "runtime/checkpoint.h"
#include "runtime/config.h"

namespace sf::runtime {

// Collective (rank 0 does the work). First refuses, with a ConfigError on every rank and
// nothing removed, an input file inside any path below (input_inside) or a path
// below that exists but shardforge did not make (RunManifest::claim). Then claims
// them all in the manifest, creates the run directory (config.output.dir) and writes
// config.yaml. Removes `results` (run-dir-relative files or folders that a finished run
// publishes: nothing half-done may look like a result); without config.resume also
// `checkpoint_outputs` and every completion marker; with it, logs what status.json says of the
// previous run. Then creates `folders`. Removes only what shardforge made
// (RunManifest::remove). REQUIRES: open_run_dir before (the lock).
void prepare_run_dir(cluster::Comm& comm, const Config& config,
                     const Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders);

}  // namespace sf::runtime
