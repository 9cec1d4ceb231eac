// The commands behind `shardforge <command>`. Each is collective: every rank calls it with the
// same config. Each returns the process exit code; errors that all ranks agree on come out
// as cluster::PhaseError. submit_job (commands/submit.h) is the exception: one process, no MPI.
#pragma once

#include <string>
#include <vector>

#include "cluster/comm.h"
#include "runtime/config.h"

namespace sf::commands {

// Trains, builds and merges <output.dir>/index.faiss; writes config.yaml and run.json.
int build_job(cluster::Comm& comm, const runtime::Config& config);
// Searches <output.dir>/index.faiss with eval.queries; writes eval.json, prints the table.
int eval_job(cluster::Comm& comm, const runtime::Config& config);
// Searches search.queries over the sharded layout (plan.json + shards/, written by build with
// partition.shards > 0); writes search.h5 (`ids`, `distances`: nq x k, attribute
// format_version) and search.json (qps, codes scanned per query and per shard).
int search_job(cluster::Comm& comm, const runtime::Config& config);
constexpr int kSearchFormatVersion = 1;
// Prints what the run directory holds: index shape and list balance, stage times, recall.
int info_job(cluster::Comm& comm, const runtime::Config& config);

// `shardforge status RUN_DIR_OR_CONFIG [--json]` (commands/status.h).
struct StatusOptions {
  std::string path;   // a run directory, or a config (its output.dir)
  bool json = false;  // one JSON object instead of text
};
// Not collective, no MPI, read-only: prints the command that ran in the run directory, its
// state and its stages, the ranks' progress, the Slurm job's state and the last error. Returns
// 0. Throws runtime::ConfigError when the path is not a run directory or a readable config.
int status_job(const StatusOptions& options);

}  // namespace sf::commands
