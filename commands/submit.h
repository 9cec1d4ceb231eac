// `shardforge submit`: one process on a login node, no MPI. Writes a batch script for each
// command of a chain (slurm/job.sbatch.in, commands/submit_script.h) and hands it to sbatch.
#pragma once

#include <string>
#include <vector>

#include "runtime/config.h"

namespace sf::commands {

// What `shardforge submit` asks Slurm for. An empty string or a 0 count takes the config's
// `slurm` section instead where it has the key (see runtime::SlurmConfig); else it is left out
// of the script, so that Slurm's defaults apply.
struct SubmitOptions {
  // The shardforge commands, one job each, in order; each job after the first waits for the one
  // before it to succeed (afterok).
  std::vector<std::string> commands = {"build"};
  std::string job_name;
  int nodes = 0;
  int ntasks = 0;
  int ntasks_per_node = 0;
  int cpus_per_task = 0;
  std::string mem;          // per node, e.g. 100M, 4G
  std::string mem_per_cpu;  // excludes mem
  std::string gres;         // e.g. gpu:2
  std::string constraint;   // node features, e.g. avx512
  bool exclusive = false;   // whole nodes, shared with no other job
  std::string time;
  std::string partition;
  std::string account;
  std::string qos;
  std::vector<std::string> sbatch_args;  // one "#SBATCH ARG" line each, after the others
  std::string after;     // a job id: the first job waits for it to succeed (afterok)
  bool dry_run = false;  // write and print the scripts, do not call sbatch
  bool resume = false;   // the jobs run their commands with --resume
  // #SBATCH --requeue, and the script requeues the job when the ranks stopped at a safe point
  // (exit 75: SIGTERM at preemption or the time limit); the requeued run resumes.
  bool requeue = false;
};

// One job of a submission.
struct SubmitJob {
  std::string command;
  // The command has --resume (checkpoints): a requeued job resumes. Else a requeued job runs it
  // again from the start, and SubmitOptions::resume is refused.
  bool resumable = true;
  std::string after;  // a job id it waits for (afterok); "" = none
};

// Why `commands` cannot run one after the other in one output.dir ("" when they can): a name
// listed twice, or a command after one whose run directory it cannot use (runtime::
// run_dir_role: `run` after `dedup`, `eval` after `run`, ...).
std::string chain_error(const std::vector<std::string>& commands);

// The batch script of `job`: `shardforge` (an absolute path) runs job.command on the absolute
// config.source with `overrides`, in `workdir`; the log goes to output.dir. Flags win over the
// config's slurm section. Throws runtime::ConfigError when a value cannot go on an #SBATCH line
// (it names the flag and the key), or --resume for a job that is not resumable.
std::string job_script(const runtime::Config& config, const std::vector<std::string>& overrides,
                       const SubmitOptions& options, const SubmitJob& job,
                       const std::string& shardforge, const std::string& workdir);

// `shardforge submit`. Not collective. Checks the chain and every script first (ConfigError:
// nothing written), creates output.dir, then for each job in turn writes its script (atomically:
// <output.dir>/submit.sbatch for one job, submit-<command>.sbatch for each job of a chain), runs
// `sbatch --parsable` on it and prints the job id, script and log path; with dry_run prints the
// scripts instead. Returns 0. Throws std::runtime_error when sbatch is missing or refuses a job
// (with its stderr; the jobs already submitted are named, and the chain stops there).
int submit_job(const runtime::Config& config, const std::vector<std::string>& overrides,
               const SubmitOptions& options, const std::vector<SubmitJob>& jobs);

}  // namespace sf::commands
