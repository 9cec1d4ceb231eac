// How a stage learns that the job should stop (SIGTERM from Slurm, ...) and stops at a safe
// point of its own. The pipeline decides where the request comes from; stages only ask.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "cluster/comm.h"

namespace sf::stages {

// Local: has this rank been asked to stop? Must be cheap and async-signal-safe to read (a
// flag). May be empty: never.
using StopRequestFn = std::function<bool()>;

// Collective (one small allreduce, or none when `stop_requested` is empty, which must then be
// empty on every rank): true on every rank when any rank was asked to stop.
inline bool agree_to_stop(cluster::Comm& comm, const std::string& phase,
                          const StopRequestFn& stop_requested) {
  if (!stop_requested) return false;
  return cluster::agree_or_stop(comm, phase, nullptr, stop_requested());
}

// The ranks agreed to stop at a safe point inside or before `phase` (a stage, or a step of
// one); thrown on every rank alike. The one "stopped" type of every stage and command
// (runtime::Stopped is this type): the job keeps what the stages saved and exits with
// runtime::kExitStopped.
class StageStopped : public std::runtime_error {
 public:
  explicit StageStopped(const std::string& phase, const std::string& what = "")
      : std::runtime_error(what.empty() ? "stopped by a signal during " + phase +
                                              "; completed checkpoints are kept: rerun with "
                                              "--resume"
                                        : what),
        phase_(phase) {}
  const std::string& phase() const { return phase_; }
  const std::string& stage() const { return phase_; }

 private:
  std::string phase_;
};

}  // namespace sf::stages
