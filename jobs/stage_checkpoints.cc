#include "jobs/stage_checkpoints.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>

#include "cluster/archive.h"
#include "io/atomic_file.h"
#include "io/index_file.h"
#include "pipeline/run_dir.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stop.h"

namespace sf::jobs {

void checkpoint_rank_files(cluster::Comm& comm, const pipeline::Checkpoints& checkpoints,
                           const pipeline::Fingerprint& fp, const std::string& dir,
                           const std::function<void(const std::string&)>& write,
                           const nlohmann::json& info, const std::vector<std::string>& extra) {
  cluster::run_local_phase(comm, fp.stage() + ": write checkpoint", [&] {
    io::publish_file(checkpoints.path(rank_file(dir, comm.rank())), write);
  });
  pipeline::run_step(comm, fp.stage() + ": checkpoint", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::string> outputs;
    for (int r = 0; r < comm.size(); ++r) outputs.push_back(rank_file(dir, r));
    outputs.insert(outputs.end(), extra.begin(), extra.end());
    checkpoints.mark_complete(fp, outputs, info);
  });
}

void prepare_run_dir(cluster::Comm& comm, const pipeline::Config& config,
                     const pipeline::Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders) {
  namespace fs = std::filesystem;
  const std::string& dir = config.output.dir;
  // Everything this run may replace or clean, claimed before anything is removed.
  std::vector<std::string> layout = {"config.yaml", "checkpoints"};
  for (const auto* list : {&results, &checkpoint_outputs, &folders})
    layout.insert(layout.end(), list->begin(), list->end());
  std::optional<pipeline::RunManifest> manifest;
  std::string refusal;
  cluster::run_local_phase(comm, "check output.dir", [&] {
    if (comm.rank() != 0) return;
    manifest = pipeline::RunManifest::load(dir);
    std::vector<std::string> replaced = layout;
    replaced.insert(replaced.end(), {".shardforge", "status.json", "run.json"});
    refusal = pipeline::input_inside(config, manifest->command(), replaced);
    if (refusal.empty()) refusal = manifest->claim(layout);
  });
  pipeline::agree_refusal(comm, refusal);
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    pipeline::make_run_dir(dir);
    manifest->save();
    for (const std::string& rel : results) manifest->remove(rel);
    if (config.resume) {
      const std::string previous = pipeline::describe_previous_run(dir);
      spdlog::info("resume: {}", previous.empty() ? "no earlier run in " + dir : previous);
    } else {
      for (const std::string& rel : checkpoint_outputs) manifest->remove(rel);
      checkpoints.forget_all();
    }
    for (const std::string& rel : folders) fs::create_directories(checkpoints.path(rel));
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });
}

}  // namespace sf::jobs
