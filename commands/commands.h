// The commands behind `shardforge <command>`. Each is collective: every rank calls it with the
// same config. Each returns the process exit code; errors that all ranks agree on come out
// as cluster::PhaseError. submit_job is the exception: one process, no MPI.
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

// What `shardforge submit` asks Slurm for. An empty string or a 0 count takes the config's
// `slurm` section instead (see runtime::SlurmConfig).
struct SubmitOptions {
  std::string command = "build";  // the shardforge command every task runs
  std::string job_name;
  int nodes = 0;
  int ntasks = 0;
  int ntasks_per_node = 0;
  int cpus_per_task = 0;
  std::string time;
  std::string partition;
  std::string account;
  bool dry_run = false;  // write and print the script, do not call sbatch
  bool resume = false;   // the job runs the command with --resume
  // The command has --resume (checkpoints): a requeued job resumes. Else a requeued job runs
  // it again from the start, and `resume` is refused.
  bool resumable = true;
  // #SBATCH --requeue, and the script requeues the job when the ranks stopped at a safe point
  // (exit 75: SIGTERM at preemption or the time limit); the requeued run resumes.
  bool requeue = false;
};

// `shardforge submit`: not collective, no MPI (one process on a login node). Creates
// output.dir, writes <output.dir>/submit.sbatch (slurm/job.sbatch.in filled in: this binary,
// options.command, the absolute config.source and `overrides`), then runs `sbatch --parsable`
// on it and prints the job id, script and log path; with dry_run prints the script instead.
// Returns 0. Throws std::runtime_error when sbatch is missing or refuses the job (with its
// stderr), or an option cannot go into the script.
int submit_job(const runtime::Config& config, const std::vector<std::string>& overrides,
               const SubmitOptions& options);

}  // namespace sf::commands
