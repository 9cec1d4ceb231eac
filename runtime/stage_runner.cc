#include "runtime/stage_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>

#include "io/atomic_file.h"
#include "runtime/stop.h"

namespace sf::runtime {

StageRunner::StageRunner(cluster::Comm& comm, const Config& config,
                         const Checkpoints& checkpoints, StageLog& log,
                         stages::ProgressFn progress)
    : comm_(comm),
      config_(config),
      checkpoints_(checkpoints),
      log_(log),
      progress_(std::move(progress)) {}

std::vector<Fingerprint> chain_fingerprints(const Config& config,
                                            const std::vector<Stage*>& stages,
                                            const Fingerprint* upstream) {
  std::vector<Fingerprint> fps;
  fps.reserve(stages.size());  // `upstream` points into it
  for (Stage* stage : stages) {
    Fingerprint fp(stage->name());
    if (upstream != nullptr) fp.after(*upstream);
    StageOptions options(config, fp);
    stage->configure(options);
    fps.push_back(fp);
    upstream = &fps.back();
  }
  return fps;
}

void StageRunner::plan(const std::vector<Stage*>& stages) {
  const size_t before = planned_.size();
  for (const Stage* stage : stages)
    if (std::find(planned_.begin(), planned_.end(), stage->name()) == planned_.end())
      planned_.push_back(stage->name());
  if (planned_.size() != before) plan_stages(planned_);
}

void StageRunner::run(const std::vector<Stage*>& stages) {
  const std::vector<Fingerprint> fps = configure(stages);
  fingerprints_.clear();
  outcomes_.clear();
  for (size_t i = 0; i < stages.size(); ++i) fingerprints_.emplace_back(stages[i]->name(), fps[i]);
  plan(stages);
  if (!fps.empty()) upstream_ = fps.back();
  const size_t n = stages.size();

  // Whether each checkpointed stage's marker verifies: asked once, when first needed
  // (collective, the same calls on every rank).
  std::vector<std::optional<bool>> verified(n);
  if (n > 0 && checked_ && checked_->first == fps.back().hex()) verified[n - 1] = checked_->second;
  checked_.reset();
  auto complete = [&](size_t i) {
    if (!stages[i]->checkpointed()) return false;
    if (!verified[i]) verified[i] = stage_complete(comm_, checkpoints_, fps[i], config_.resume);
    return *verified[i];
  };
  // A verified result: nothing before it needs redoing.
  const bool finished = n > 0 && complete(n - 1);
  // Stage i is skipped: the result verified, or i keeps no checkpoint and the next
  // checkpointed stage (which its work feeds) verifies.
  auto skipped = [&](size_t i) {
    if (!stages[i]->skippable() || i + 1 == n) return false;
    if (finished) return true;
    if (stages[i]->checkpointed()) return false;
    for (size_t j = i + 1; j < n; ++j)
      if (stages[j]->checkpointed()) return complete(j);
    return false;
  };
  auto reused = [&](const std::string& name) {
    for (size_t i = 0; i < n; ++i)
      if (stages[i]->name() == name) return skipped(i) || complete(i);
    return false;
  };
  for (size_t i = 0; i < n; ++i) {
    Stage& stage = *stages[i];
    const StageContext context{config_, checkpoints_, fps[i], progress_, reused, log_.budget()};
    if (skipped(i)) {
      cluster::run_local_phase(comm_, stage.name() + ": skip", [&] {
        stage.skip(context, stage.checkpointed() ? checkpoints_.info(stage.name()) : nullptr);
      });
      outcomes_.emplace_back(stage.name(), StageOutcome::kSkipped);
      continue;
    }
    log_.begin(stage.name());
    if (complete(i)) {
      nlohmann::json info;
      cluster::run_local_phase(comm_, stage.name() + ": read checkpoint", [&] {
        info = checkpoints_.info(stage.name());
        if (info.is_null())
          throw std::runtime_error(checkpoints_.marker_path(stage.name()) + ": unreadable");
      });
      stage.load(comm_, context, info);
      outcomes_.emplace_back(stage.name(), StageOutcome::kLoaded);
    } else {
      run_one(stage, context);
      outcomes_.emplace_back(stage.name(), StageOutcome::kRun);
    }
    log_.end();
  }
}

void StageRunner::run_one(Stage& stage, const StageContext& context) {
  const Fingerprint& fp = context.fingerprint;
  stage.run(comm_, context);
  if (!stage.checkpointed()) {
    run_step(comm_, stage.name(), [] {});
    return;
  }
  StageOutputs outputs;
  cluster::run_local_phase(comm_, stage.name() + ": write checkpoint",
                           [&] { outputs = stage.save(comm_, context); });
  // The agreed stop point: a stop request received during the stage is honoured once its
  // marker is written.
  run_step(comm_, stage.name() + ": checkpoint", [&] {
    if (comm_.rank() != 0) return;
    checkpoints_.mark_complete(fp, outputs.files, outputs.info, outputs.digests);
    stage.saved(context);
  });
}

std::string rank_file(const std::string& dir, int rank) {
  char name[32];
  std::snprintf(name, sizeof(name), "/rank-%05d.sfar", rank);
  return dir + name;
}

StageOutputs save_rank_files(cluster::Comm& comm, const StageContext& context,
                             const std::string& dir,
                             const std::function<void(const std::string&)>& write,
                             nlohmann::json info, const std::vector<std::string>& extra) {
  io::publish_file(context.checkpoints.path(rank_file(dir, comm.rank())), write);
  StageOutputs outputs;
  if (comm.rank() != 0) return outputs;
  for (int r = 0; r < comm.size(); ++r) outputs.files.push_back(rank_file(dir, r));
  outputs.files.insert(outputs.files.end(), extra.begin(), extra.end());
  outputs.info = std::move(info);
  return outputs;
}

std::vector<Fingerprint> StageRunner::configure(const std::vector<Stage*>& stages) {
  // A ConfigError comes out as it is (exit 2): configure() reads only the config, which every
  // rank has alike, so every rank throws it. Anything else (an input file that cannot be
  // stat'ed) is agreed.
  std::vector<Fingerprint> fps;
  std::exception_ptr error;
  try {
    fps = chain_fingerprints(config_, stages, upstream_ ? &*upstream_ : nullptr);
  } catch (const ConfigError&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  cluster::agree(comm_, "configure", error);
  return fps;
}

bool StageRunner::complete(const std::vector<Stage*>& stages) {
  if (stages.empty() || !stages.back()->checkpointed()) return false;
  const std::vector<Fingerprint> fps = configure(stages);
  const bool done = stage_complete(comm_, checkpoints_, fps.back(), config_.resume);
  checked_.emplace(fps.back().hex(), done);
  return done;
}

StageOutcome StageRunner::outcome(const std::string& stage) const {
  for (const auto& [name, outcome] : outcomes_)
    if (name == stage) return outcome;
  throw std::logic_error("StageRunner: no stage " + stage);
}

const Fingerprint& StageRunner::fingerprint(const std::string& stage) const {
  for (const auto& [name, fp] : fingerprints_)
    if (name == stage) return fp;
  throw std::logic_error("StageRunner: no stage " + stage);
}

}  // namespace sf::runtime
