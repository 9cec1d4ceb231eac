#include "pipeline/stage_runner.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "pipeline/stop.h"

namespace sf::pipeline {

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

void StageRunner::run(const std::vector<Stage*>& stages) {
  std::vector<Fingerprint> fps;
  cluster::run_local_phase(comm_, "configure", [&] {
    fps = chain_fingerprints(config_, stages, upstream_ ? &*upstream_ : nullptr);
  });
  fingerprints_.clear();
  outcomes_.clear();
  for (size_t i = 0; i < stages.size(); ++i) fingerprints_.emplace_back(stages[i]->name(), fps[i]);
  if (!fps.empty()) upstream_ = fps.back();

  // A verified result: nothing before it needs redoing.
  Stage* last = stages.empty() ? nullptr : stages.back();
  const bool finished = last != nullptr && last->checkpointed() &&
                        stage_complete(comm_, checkpoints_, fps.back(), config_.resume);
  for (size_t i = 0; i < stages.size(); ++i) {
    Stage& stage = *stages[i];
    const StageContext context{config_, checkpoints_, fps[i], progress_};
    if (finished && stage.skippable() && i + 1 < stages.size()) {
      cluster::run_local_phase(comm_, stage.name() + ": skip", [&] {
        stage.skip(context, stage.checkpointed() ? checkpoints_.info(stage.name()) : nullptr);
      });
      outcomes_.emplace_back(stage.name(), StageOutcome::kSkipped);
      continue;
    }
    const bool complete = stage.checkpointed() &&
                          (finished && i + 1 == stages.size()
                               ? true
                               : stage_complete(comm_, checkpoints_, fps[i], config_.resume));
    log_.begin(stage.name());
    if (complete) {
      nlohmann::json info;
      cluster::run_local_phase(comm_, stage.name() + ": read checkpoint", [&] {
        info = checkpoints_.info(stage.name());
        if (info.is_null())
          throw std::runtime_error(checkpoints_.marker_path(stage.name()) + ": unreadable");
      });
      stage.load(comm_, context, info);
      outcomes_.emplace_back(stage.name(), StageOutcome::kLoaded);
    } else {
      run_one(stage, fps[i]);
      outcomes_.emplace_back(stage.name(), StageOutcome::kRun);
    }
    log_.end();
  }
}

void StageRunner::run_one(Stage& stage, const Fingerprint& fp) {
  const StageContext context{config_, checkpoints_, fp, progress_};
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
    checkpoints_.mark_complete(fp, outputs.files, outputs.info);
    stage.saved(context);
  });
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

}  // namespace sf::pipeline
