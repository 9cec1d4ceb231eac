// The stage contract and the one runner that every command's pipeline goes through.
//
// A command is a short, static list of stages (commands/build_job.cc: open -> train -> partition
// -> add -> merge). Each stage
//   - reads its options through StageOptions: every key it reads becomes a part of its
//     fingerprint, so what a stage depends on and what it reads cannot drift apart;
//   - runs collectively (run), and saves / loads its checkpoint (save / load).
// The runner does the rest, the same way for every stage and command: the fingerprint chain
// (a stage's fingerprint includes its predecessor's), verify-or-run with --resume, the stage
// log and status.json (StageLog::begin), the completion marker, and the agreed stop / error
// point after each stage (run_step: runtime::Stopped or cluster::PhaseError on every rank).
//
// The one way to skip finished work: when the last stage's marker verifies, every skippable
// stage before it is skipped (Stage::skip) and the last one is read back (Stage::load);
// otherwise each checkpointed stage whose marker verifies is read back, a skippable stage
// without a checkpoint of its own is skipped when the next checkpointed stage verifies (its
// work only feeds the stages up to that one), and the others run.
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "runtime/checkpoint.h"
#include "runtime/config.h"
#include "runtime/memory_budget.h"
#include "runtime/run_dir.h"
#include "stages/progress.h"

namespace sf::runtime {

// A stage's view of the config while it states what its outputs depend on.
class StageOptions {
 public:
  StageOptions(const Config& config, Fingerprint& fingerprint)
      : config_(config), fingerprint_(fingerprint) {}

  // The typed value of `dotted_key`, which becomes a fingerprint part:
  //   factory_ = options.read("index.factory", config.index.factory);
  // REQUIRES: `field` is the member that holds `dotted_key` (a schema key).
  template <class T>
  const T& read(std::string_view dotted_key, const T& field) {
    fingerprint_.key(config_, dotted_key);
    return field;
  }
  // Keys the outputs depend on whose values the stage takes elsewhere (through a parser of the
  // whole config, as the dedup setup, or from options.config()): each becomes a part.
  void keys(std::initializer_list<std::string_view> dotted_keys) {
    fingerprint_.keys(config_, dotted_keys);
  }
  // Input files the outputs depend on (Fingerprint::input_files, input.verify). Local stat();
  // throws std::runtime_error naming a file that cannot be stat'ed.
  void input_files(const std::vector<std::string>& paths) {
    fingerprint_.input_files(config_, paths);
  }
  // Anything else the outputs depend on (the rank count where they do).
  void value(const std::string& name, const std::string& value) {
    fingerprint_.value(name, value);
  }
  // The whole config, for the settings the outputs do not depend on (threads, batch sizes,
  // piece sizes): reading those here does not fingerprint them.
  const Config& config() const { return config_; }

 private:
  const Config& config_;
  Fingerprint& fingerprint_;
};

// What a stage's completion marker lists: run-dir-relative files, already published, and the
// `info` a resumed run reads back (Checkpoints::mark_complete).
struct StageOutputs {
  std::vector<std::string> files;
  nlohmann::json info = nlohmann::json::object();
  // Digests of some of `files` that the stage read back itself (the merge's index.faiss):
  // the marker takes them instead of reading those files once more.
  std::map<std::string, io::FileDigest> digests = {};
};

// What a stage is given when it runs, saves or loads.
struct StageContext {
  const Config& config;
  const Checkpoints& checkpoints;
  const Fingerprint& fingerprint;  // this stage's, with the chain
  const stages::ProgressFn& progress;
  // Collective (every rank alike): true when the stage of that name in the same
  // StageRunner::run() call will not run: its checkpoint is read back, or it is skipped. For a
  // stage whose work serves a later one only in part (read+sketch keeps the texts for embed).
  // False for a name not in the call.
  std::function<bool(const std::string& stage)> reused;
  // The memory each rank may use, alike on every rank (resolve_memory_budget; bytes 0: none was
  // resolved). A stage plans its batches and buffers from it, and one whose needs exceed it
  // throws ConfigError before it starts (over_budget_message).
  const MemoryBudget& budget;
};

// "<dir>/rank-RRRRR.sfar": a rank's checkpoint file of a stage whose outputs are per rank.
std::string rank_file(const std::string& dir, int rank);
// Stage::save() of such a stage. Local, every rank: publishes this rank's rank_file(dir) in
// the checkpoint folder with write(temporary path); on rank 0 returns every rank's file and
// `extra` (files rank 0 published inside `write`) with `info`. Throws naming the file.
StageOutputs save_rank_files(cluster::Comm& comm, const StageContext& context,
                             const std::string& dir,
                             const std::function<void(const std::string&)>& write,
                             nlohmann::json info, const std::vector<std::string>& extra = {});

// One unit of a command's pipeline. Work is in run(); what the following stages use is state
// the command shares between its stages (typed, by reference), not in the runner.
class Stage {
 public:
  virtual ~Stage() = default;
  // The marker's name (checkpoints/<name>.json), the stage log's and status.json's.
  virtual std::string name() const = 0;
  // Local, every rank alike: reads the options (each key read is fingerprinted). No data is
  // read here: the runner needs every fingerprint before any stage runs. Throws ConfigError
  // only for what the config alone decides (every rank throws it alike). Default: reads none.
  virtual void configure(StageOptions& options) { (void)options; }
  // False: no marker of its own; the stage is redone on resume (or keeps finer checkpoints
  // itself, as add's pieces).
  virtual bool checkpointed() const { return true; }
  // False: the stage runs even when the pipeline's result verifies (it opens what the command
  // reports on, e.g. the corpus).
  virtual bool skippable() const { return true; }
  // Collective: the work. Throws alike on every rank (PhaseError, Stopped, ConfigError).
  virtual void run(cluster::Comm& comm, const StageContext& context) = 0;
  // Local, every rank (checkpointed stages): publishes this rank's outputs; on rank 0 returns
  // what the marker lists (every rank's files). May throw (agreed by the runner).
  virtual StageOutputs save(cluster::Comm& comm, const StageContext& context) {
    (void)comm, (void)context;
    return {};
  }
  // Local, rank 0, after the marker is written: removes what it supersedes.
  virtual void saved(const StageContext& context) { (void)context; }
  // Collective: reads back what save() wrote (its marker verified; `info` as saved).
  virtual void load(cluster::Comm& comm, const StageContext& context,
                    const nlohmann::json& info) = 0;
  // Local: not needed, the pipeline's result verified. `info`: this stage's marker's info
  // (null when there is none), for the report.
  virtual void skip(const StageContext& context, const nlohmann::json& info) {
    (void)context, (void)info;
  }
};

// A stage without a checkpoint of its own: run again on resume, or skipped (when skippable)
// once the next checkpointed stage, which its work feeds, verifies.
class TransientStage : public Stage {
 public:
  bool checkpointed() const final { return false; }
  void load(cluster::Comm&, const StageContext&, const nlohmann::json&) final {}
};

// Local: the fingerprints of `stages` in order, chained from `upstream` (may be null); calls
// each stage's configure(). For a command that needs a fingerprint before its stages run
// (e.g. that of its final outputs, which builds on theirs).
std::vector<Fingerprint> chain_fingerprints(const Config& config,
                                            const std::vector<Stage*>& stages,
                                            const Fingerprint* upstream);

// How each stage ended in a StageRunner::run() call.
enum class StageOutcome { kRun, kLoaded, kSkipped };

// Runs the stages of one command. Collective: every rank makes the same calls.
class StageRunner {
 public:
  StageRunner(cluster::Comm& comm, const Config& config, const Checkpoints& checkpoints,
              StageLog& log, stages::ProgressFn progress);

  // The next stage's fingerprint builds on `upstream` (a stage outside this runner, e.g. run's
  // embed). Without it the first stage starts the chain.
  void after(const Fingerprint& upstream) { upstream_ = upstream; }

  // Collective. Configures every stage (their fingerprints, chained in order; a ConfigError
  // comes out as it is, on every rank alike, other configure errors are agreed), then runs
  // them in order as the header comment says. After each stage that ran, an agreed stop /
  // error point (the marker of a checkpointed stage is written there, rank 0). Throws
  // cluster::PhaseError or Stopped on every rank alike.
  void run(const std::vector<Stage*>& stages);

  // Records the stages the command will run, in order, for `shardforge status` (status.json
  // "stages", runtime::plan_stages): run() adds its own; a command that runs its stages in
  // several run() calls names them all first. Local.
  void plan(const std::vector<Stage*>& stages);

  // Collective: configures `stages` as run() would and tells whether the last one's marker
  // verifies: the command's result is there, nothing needs to run (a command asks before it
  // prepares its run directory). run() on the same stages does not ask again.
  bool complete(const std::vector<Stage*>& stages);

  StageOutcome outcome(const std::string& stage) const;
  // The fingerprint of a stage of the last run() call (its chain). REQUIRES: it was there.
  const Fingerprint& fingerprint(const std::string& stage) const;
  // The last stage's fingerprint: the chain continues from it in the next run() call.
  const Fingerprint* last() const { return upstream_ ? &*upstream_ : nullptr; }

 private:
  std::vector<Fingerprint> configure(const std::vector<Stage*>& stages);
  void run_one(Stage& stage, const StageContext& context);

  cluster::Comm& comm_;
  const Config& config_;
  const Checkpoints& checkpoints_;
  StageLog& log_;
  stages::ProgressFn progress_;
  std::optional<Fingerprint> upstream_;
  std::optional<std::pair<std::string, bool>> checked_;  // complete(): the last fp, the answer
  std::vector<std::pair<std::string, Fingerprint>> fingerprints_;
  std::vector<std::pair<std::string, StageOutcome>> outcomes_;
  std::vector<std::string> planned_;
};

}  // namespace sf::runtime
