// Who made a run directory and what in it shardforge wrote. shardforge removes or replaces
// only paths it made itself; a user's own files in a run directory are never touched.
//
// <run dir>/.shardforge/manifest.json (atomic):
//   {"format_version": 1, "command": "build"|"dedup"|"run"|"" (made by a consumer in a
//    directory without a manifest), "version", "created", "updated",
//    "paths": [run-dir-relative paths a run claimed before writing them, sorted]}
// A claimed folder holds only shardforge's files as far as removal goes: removing it removes
// the files in it whose names shardforge writes there (part-NNNNN*, kept/NNNNN*, rank-NNNNN.sfar,
// rows-*.sfsh, shard-*.faiss, checkpoints/**.json, and their "<name>.tmp.<pid>" leftovers),
// then the folders left empty; any other file stays (logged).
//
// A run directory belongs to the command that made it: `build` (then eval, search), `dedup`
// (then dedup-quality) or `run` (then query). `info` and `query` only read. A producing
// command in a directory without a manifest uses it, refusing to replace anything that is
// already there (a user's index.faiss, kept/, ...); unrelated files stay untouched.
// No MPI here except the collective open_run_dir() and agree_refusal().
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "runtime/config.h"
#include "runtime/run_lock.h"

namespace sf::runtime {

constexpr int kManifestFormatVersion = 1;

// How a command uses its output.dir.
struct RunDirRole {
  enum Kind { kReadOnly, kProducer, kConsumer } kind = kReadOnly;
  std::string producer;  // kProducer: itself; kConsumer: the command whose directory it uses
  std::string also;      // kConsumer: another producer whose directory it uses ("" = none)
};
// build/dedup/run: producers; eval: consumer of build; search: of build or run (both write the
// sharded layout); dedup-quality: of dedup;
// info (and anything else): read-only.
RunDirRole run_dir_role(const std::string& command);

class RunManifest {
 public:
  // The manifest of `dir`; an empty one (exists() false) when there is none. Local. Throws
  // ConfigError for a manifest this shardforge cannot read (other format version, not JSON).
  static RunManifest load(const std::string& dir);

  bool exists() const { return exists_; }
  const std::string& dir() const { return dir_; }
  const std::string& command() const { return command_; }  // "" when none or unknown
  void set_command(const std::string& command) { command_ = command; }

  // True when shardforge made `rel` (run-dir relative): it was claimed, or it is a file with
  // a shardforge name inside a claimed folder.
  bool owns(const std::string& rel) const;
  // Claims each of `rels` for this run. Claims nothing and returns why when one of them
  // exists and shardforge did not make it; "" when all are claimed. Call save() after.
  std::string claim(const std::vector<std::string>& rels);
  void save();  // atomic; creates <dir>/.shardforge. Throws std::runtime_error naming it.

  // Removes `rel` if shardforge made it: a file, or a claimed folder's shardforge files
  // (see above); also "<rel>.tmp.<pid>" leftovers of a killed publish. Anything else stays.
  // Local; throws std::filesystem::filesystem_error.
  void remove(const std::string& rel) const;

 private:
  std::string dir_;
  bool exists_ = false;
  std::string command_;
  std::string created_;
  std::set<std::string> paths_;
};

// Collective: rank 0 claims the outputs `rels` of a consumer command (eval, search, ...) in
// the manifest of `dir`, with their parent folders that do not exist yet. One in the way
// (RunManifest::claim) is a ConfigError on every rank.
void claim_outputs(cluster::Comm& comm, const std::string& dir,
                   const std::vector<std::string>& rels);

// Local: removes `rel` from `dir` if shardforge made it (RunManifest::load(dir).remove(rel)).
void remove_owned(const std::string& dir, const std::string& rel);

// Collective: a refusal decided on rank 0 (`refusal` non-empty there) becomes a ConfigError
// (exit 2) on every rank alike. Other ranks pass anything.
void agree_refusal(cluster::Comm& comm, const std::string& refusal);

// Local: why one of the input files the config names (input.paths, eval.queries,
// eval.ground_truth, search.queries, partition.workload, partition.weights, embed.vectors)
// lies inside `dir`/<one of `replaced`> (a path the run replaces or cleans); "" when none does.
std::string input_inside(const Config& config, const std::string& command,
                         const std::vector<std::string>& replaced);

// What open_run_dir holds for the run's whole life: the lock (rank 0, writing commands).
class RunDirLease {
 public:
  RunDirLease() = default;
  explicit RunDirLease(std::unique_ptr<RunLock> lock) : lock_(std::move(lock)) {}

 private:
  std::unique_ptr<RunLock> lock_;
};

// Collective. Every rank expanded input.paths on its own (load_config): a ConfigError on every
// rank when some rank's file list differs from rank 0's (nodes that see different files).
void agree_input_files(cluster::Comm& comm, const Config& config);

// Collective. Opens config.output.dir for `command` (run_dir_role); agree_input_files first. Read-only commands: does
// nothing. Others, on rank 0: a consumer needs the directory to exist; creates it and
// .shardforge/, takes the lock (RunLock), checks the manifest's command against the role and
// claims status.json and run.json. Any refusal (busy, another command's directory, a file in
// the way) is a ConfigError on every rank, with nothing removed or written but the lock.
RunDirLease open_run_dir(cluster::Comm& comm, const Config& config, const std::string& command);

// RAII, local: removes run-dir-relative temporary folders (kept.tmp, run.tmp, ...) that
// shardforge made, when the job ends by any path (success, failure, stop). Does the work only
// where `active` (rank 0, which made them).
class TemporaryFolders {
 public:
  TemporaryFolders(std::string dir, std::vector<std::string> rels, bool active)
      : dir_(std::move(dir)), rels_(std::move(rels)), active_(active) {}
  ~TemporaryFolders();
  TemporaryFolders(const TemporaryFolders&) = delete;
  TemporaryFolders& operator=(const TemporaryFolders&) = delete;

 private:
  std::string dir_;
  std::vector<std::string> rels_;
  bool active_;
};

}  // namespace sf::runtime
