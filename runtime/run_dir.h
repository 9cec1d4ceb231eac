// The run directory and what a job records in it: logging tagged with the rank, progress of
// long steps on rank 0, per-stage wall time and peak memory per rank (run.json).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "runtime/config.h"
#include "runtime/memory_budget.h"
#include "stages/progress.h"

namespace sf::runtime {

// spdlog's default logger, lines tagged "[rank R/N]". Ranks other than 0 log warnings and
// errors only unless `verbose`.
void setup_logging(int rank, int size, bool verbose);

// OpenMP threads per rank: config.threads, else $OMP_NUM_THREADS, else cores on this node
// / ranks on this node, at most the CPUs this process may run on (mpirun binds ranks).
int choose_threads(const Config& config, const cluster::Comm& comm);
// CPUs in this process's affinity mask (0 when unknown).
int usable_cpus();
// Logs a warning when `threads` exceeds usable_cpus(): e.g. mpirun's default core binding.
void warn_if_oversubscribed(int threads, int rank);

// A ProgressFn that logs on rank 0 at most every 2 s per step: done/total, rate, ETA (a step
// that stages::counts_bytes: sizes and MiB/s); a step of at most 100 units (k-means
// iterations) logs every unit. On every rank it also records the
// progress for `shardforge status` (runtime/stop.h, record_progress).
stages::ProgressFn make_progress_logger(int rank);

// "1.2s", "3m04s", "2h05m": a duration for the log.
std::string format_seconds(double seconds);

// This process's resident set size now and its peak since it started (VmHWM), in MiB (Linux).
double current_rss_mib();
double peak_rss_mib();

// The peak resident memory of one stretch of a process (a stage), without resetting the
// process's high-water mark: a reset (/proc/self/clear_refs "5") resets the kernel's
// ru_maxrss too, which `/usr/bin/time -f %M`, Slurm's MaxRSS and the OOM reports read, so an
// outside view would see only the last stage. Exact for a stretch that raises the process's
// peak (VmHWM grows: that is its peak); otherwise the largest VmRSS that a thread samples every
// kSampleMs while it runs (a spike shorter than that below an earlier stage's peak can be
// missed). Costs one read of /proc/self/statm per sample.
class StagePeak {
 public:
  static constexpr int kSampleMs = 5;
  StagePeak();  // starts sampling
  ~StagePeak();
  StagePeak(const StagePeak&) = delete;
  StagePeak& operator=(const StagePeak&) = delete;
  // Stops sampling; the peak since construction in MiB. REQUIRES: called once.
  double finish();

 private:
  struct Sampler;
  std::unique_ptr<Sampler> sampler_;
  double hwm_at_start_mib_ = 0;
};

// Per-stage wall time and peak RSS of this rank, and the memory budget they are held to
// (resolve_memory_budget: once per command; bytes 0 when none was resolved, as in tests).
class StageLog {
 public:
  StageLog() = default;
  explicit StageLog(MemoryBudget budget) : budget_(std::move(budget)) {}
  const MemoryBudget& budget() const { return budget_; }

  struct Entry {
    std::string stage;
    double seconds = 0;
    double peak_rss_mib = 0;
  };
  void begin(const std::string& stage);
  // REQUIRES: begin() before. Logs a warning when this rank's peak went over the budget.
  void end();
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  MemoryBudget budget_;
  std::vector<Entry> entries_;
  std::string current_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<StagePeak> peak_;  // between begin() and end()
};

// Collective: every rank's StageLog on rank 0, as [{"name", "seconds": [per rank],
// "peak_rss_mib": [per rank]}] in the order of the stages; null on the other ranks.
nlohmann::json gather_stage_log(cluster::Comm& comm, const StageLog& log);

// Collective: gathers every rank's StageLog on rank 0, which records it in <dir>/run.json
// (atomic), keeping other commands' entries:
// {"format_version": 1, "version", "commands": {"<command>": {"ranks", "threads_per_rank",
//  "memory_budget_mib", "memory_budget_source",
//  "stages": [{"name", "seconds": [per rank], "peak_rss_mib": [per rank],
//              "peak_over_budget": largest peak / budget, "over_budget": bool}], "summary"}}}.
// The budget's keys are there when the log has one.
void write_run_json(cluster::Comm& comm, const std::string& dir, const std::string& command,
                    int threads, const StageLog& log, const nlohmann::json& summary);

// Creates `dir` (and parents). Throws std::runtime_error naming it.
void make_run_dir(const std::string& dir);

constexpr int kRunJsonFormatVersion = 1;

}  // namespace sf::runtime
