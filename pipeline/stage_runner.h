// The stage contract and the one runner that every command's pipeline goes through.
//
// A command is a short, static list of stages (jobs/build_job.cc: open -> train -> partition
// -> add -> merge). Each stage
//   - reads its options through StageOptions: every key it reads becomes a part of its
//     fingerprint, so what a stage depends on and what it reads cannot drift apart;
//   - runs collectively (run), and saves / loads its checkpoint (save / load).
// The runner does the rest, the same way for every stage and command: the fingerprint chain
// (a stage's fingerprint includes its predecessor's), verify-or-run with --resume, the stage
// log and status.json (StageLog::begin), the completion marker, and the agreed stop / error
// point after each stage (run_step: pipeline::Stopped or cluster::PhaseError on every rank).
//
// The one way to skip finished work: when the last stage's marker verifies, every skippable
// stage before it is skipped (Stage::skip) and the last one is read back (Stage::load);
// otherwise each checkpointed stage whose marker verifies is read back, the others run.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "pipeline/checkpoint.h"
#include "pipeline/config.h"
#include "pipeline/run_dir.h"
#include "stages/progress.h"

namespace sf::pipeline {

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

// What a stage is given when it runs, saves or loads.
struct StageContext {
  const Config& config;
  const Checkpoints& checkpoints;
  const Fingerprint& fingerprint;  // this stage's, with the chain
  const stages::ProgressFn& progress;
};

// What a stage's completion marker lists: run-dir-relative files, already published, and the
// `info` a resumed run reads back (Checkpoints::mark_complete).
struct StageOutputs {
  std::vector<std::string> files;
  nlohmann::json info = nlohmann::json::object();
};

// One unit of a command's pipeline. Work is in run(); what the following stages use is state
// the command shares between its stages (typed, by reference), not in the runner.
class Stage {
 public:
  virtual ~Stage() = default;
  // The marker's name (checkpoints/<name>.json), the stage log's and status.json's.
  virtual std::string name() const = 0;
  // Local, every rank alike: reads the options (each key read is fingerprinted). No data is
  // read here: the runner needs every fingerprint before any stage runs.
  virtual void configure(StageOptions& options) = 0;
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

  // Collective. Configures every stage (their fingerprints, chained in order; configure errors
  // agreed), then runs them in order as the header comment says. After each stage that ran,
  // an agreed stop / error point (the marker of a checkpointed stage is written there, rank 0).
  // Throws cluster::PhaseError or Stopped on every rank alike; a ConfigError of configure()
  // comes out as one too (cluster::agree).
  void run(const std::vector<Stage*>& stages);

  StageOutcome outcome(const std::string& stage) const;
  // The fingerprint of a stage of the last run() call (its chain). REQUIRES: it was there.
  const Fingerprint& fingerprint(const std::string& stage) const;
  // The last stage's fingerprint: the chain continues from it in the next run() call.
  const Fingerprint* last() const { return upstream_ ? &*upstream_ : nullptr; }

 private:
  void run_one(Stage& stage, const Fingerprint& fp);

  cluster::Comm& comm_;
  const Config& config_;
  const Checkpoints& checkpoints_;
  StageLog& log_;
  stages::ProgressFn progress_;
  std::optional<Fingerprint> upstream_;
  std::vector<std::pair<std::string, Fingerprint>> fingerprints_;
  std::vector<std::pair<std::string, StageOutcome>> outcomes_;
};

}  // namespace sf::pipeline
