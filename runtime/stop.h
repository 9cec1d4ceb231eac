// Stopping cleanly. SIGTERM (Slurm preemption or time limit; mpirun passing on a kill),
// SIGINT and SIGUSR1 (`sbatch --signal=USR1@<seconds>`: ahead of the time limit) set a flag; the ranks agree on it at safe points (stage boundaries, batch
// boundaries) and stop together, keeping every checkpoint that is complete, with exit code
// kExitStopped. The run directory's status.json says which stage each run was in and how it
// ended, so a killed run (SIGKILL, a lost node) can still be told apart from a finished one.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "stages/stop_request.h"

namespace sf::runtime {

// Process exit codes of the commands.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;   // an error (all ranks agreed on it, or the job was aborted)
constexpr int kExitConfig = 2;   // a bad config or command line
constexpr int kExitStopped = 75;  // EX_TEMPFAIL: stopped by a signal at a safe point; rerun
                                  // with --resume (the sbatch script requeues on it)

// Installs the SIGTERM / SIGINT / SIGUSR1 handlers. A handler sets the flag and writes one line to
// stderr naming the rank and the current stage (async-signal-safe). Call once, early.
void install_stop_handlers(int rank, int size);
// True once this process got one of those signals.
bool stop_requested();
// Test hook: as if a signal had arrived (or clears the flag).
void set_stop_requested(bool value);

// The ranks agreed to stop at a safe point inside or before a stage: the one "stopped" type,
// shared with the stages (stages/stop_request.h).
using Stopped = stages::StageStopped;

// Collective: runs `local_work` (no collectives inside), then agrees on failure and stop in
// one allreduce. Throws cluster::PhaseError (some rank failed) or Stopped (some rank got a
// signal) on every rank alike.
void run_step(cluster::Comm& comm, const std::string& phase,
              const std::function<void()>& local_work);

// Where a run is: rank 0 records it in <dir>/status.json (atomic):
// {"format_version": 1, "command", "stages" (plan_stages), "stage", "state": "running"|"done"|"failed"|"stopped",
//  "message", "error_rank" (the failed rank, -1 when none), "ranks", "pid", "pid_start_ticks",
//  "host", "slurm_job_id" ("" outside Slurm), "started" (the run), "stage_started", "updated"};
// every rank remembers the stage for the signal line. `shardforge status` reads it.
// Process-wide, like the signal flag. Local; never throws (nothing is written while `dir`
// does not exist; a disk that cannot take it is reported by the stage's own error). Only
// commands that write into the run directory call it: `info` leaves status.json as it is.
void start_run_status(const std::string& dir, const std::string& command, int rank, int size);
// The stages the command runs, in order (status.json "stages", what `shardforge status` lists):
// StageRunner::run names its stages; eval and search name theirs.
void plan_stages(const std::vector<std::string>& stages);
// State "running" in `stage`. StageLog::begin (runtime/run_dir.h) calls it.
void enter_stage(const std::string& stage);
// `error_rank`: the rank whose error ended the run (PhaseError::failed_rank), -1 when none.
void finish_run_status(const std::string& state, const std::string& message = "",
                       int error_rank = -1);
std::string current_stage();

// Every rank, from the progress logger (runtime/run_dir.h): records this rank's progress in
// `step` of the current stage, at the first report of a step and then at most once a second,
// in progress_path(dir, rank, slot), the two slots in turn (truncate + one write, no fsync,
// no rename): {"format_version": 1, "rank", "seq" (1, 2, ...), "pid", "stage", "step",
// "done", "total", "step_started", "first_done" (done at step_started), "updated"} (times:
// Unix seconds). A reader takes the slot with the higher seq that parses. Local;
// thread-safe; never throws; nothing before start_run_status() or while <dir>/.shardforge
// does not exist.
void record_progress(const std::string& step, int64_t done, int64_t total);
// <dir>/.shardforge/progress/rank-R-S.json, slot S 0 or 1.
std::string progress_path(const std::string& dir, int rank, int slot);

// One line describing the status.json an earlier run left in `dir`, e.g. "the previous build
// (2 rank(s), <time>) did not finish: it was in stage 'add' when it ended (killed, or a node
// was lost)"; "" when there is none.
std::string describe_previous_run(const std::string& dir);

// Now, UTC, as "2026-12-04T21:40:48Z" (status.json, the run lock, the manifest).
std::string utc_now_text();

}  // namespace sf::runtime
