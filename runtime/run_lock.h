// The lock a run holds on its output directory, so that two runs never write into one run
// directory at once. It must hold across the nodes of an allocation on a shared filesystem
// (NFS, Lustre), where fcntl/flock locks are unreliable, so it is a lock file created
// atomically with link(2) (NFS-safe, unlike O_EXCL on old clients):
//   <run dir>/.shardforge/lock, JSON: {"format_version": 1, "host", "pid",
//   "pid_start_ticks" (field 22 of /proc/<pid>/stat), "started" (UTC), "command", "ranks",
//   "slurm_job_id", "slurm_restart_count" ("" outside Slurm)}
// A lock whose holder is on this host and is gone (no such pid, or the pid was reused: its
// start time differs), or was an earlier run of this same requeued Slurm job (same
// SLURM_JOB_ID, another SLURM_RESTART_COUNT: e.g. its node was lost), is taken over with a log
// line. Any other holder on another host is never judged from here: the error says how to
// clear it (remove the file once the holder is gone).
// No MPI here: rank 0 takes it (runtime/run_manifest.h, open_run_dir).
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace sf::runtime {

constexpr int kLockFormatVersion = 1;

// Another run holds the lock. what(): names the holder and how to clear a stale lock.
class RunDirBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// RAII: holds <dir>/.shardforge/lock from construction to destruction. Local.
class RunLock {
 public:
  // REQUIRES: <dir>/.shardforge exists. Throws RunDirBusy when a live (or unverifiable) run
  // holds it; std::runtime_error when the file cannot be written.
  RunLock(const std::string& dir, const std::string& command, int ranks);
  ~RunLock();  // removes the lock file, if it is still ours
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string text_;  // what we wrote: removed only while the file still holds it
};

// Start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat); -1
// when there is no such process. Local.
long long process_start_ticks(long pid);
// This machine's host name.
std::string host_name();
// Why the process a record names ({"host", "pid", "pid_start_ticks"}: the lock, status.json) is
// certainly gone: it ran on this host and no such pid runs, or the pid now belongs to a process
// started at another time. "" when it may run (also: another host, no pid). Local.
std::string local_process_gone(const nlohmann::json& record);

}  // namespace sf::runtime
