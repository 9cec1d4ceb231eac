#include "runtime/run_prepare.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "io/atomic_file.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stop.h"

namespace sf::runtime {

void prepare_run_dir(cluster::Comm& comm, const Config& config,
                     const Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders) {
  namespace fs = std::filesystem;
  const std::string& dir = config.output.dir;
  // Everything this run may replace or clean, claimed before anything is removed.
  std::vector<std::string> layout = {"config.yaml", "checkpoints"};
  for (const auto* list : {&results, &checkpoint_outputs, &folders})
    layout.insert(layout.end(), list->begin(), list->end());
  std::optional<RunManifest> manifest;
  std::string refusal;
  cluster::run_local_phase(comm, "check output.dir", [&] {
    if (comm.rank() != 0) return;
    manifest = RunManifest::load(dir);
    std::vector<std::string> replaced = layout;
    replaced.insert(replaced.end(), {".shardforge", "status.json", "run.json"});
    refusal = input_inside(config, manifest->command(), replaced);
    if (refusal.empty()) refusal = manifest->claim(layout);
  });
  agree_refusal(comm, refusal);
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    make_run_dir(dir);
    manifest->save();
    for (const std::string& rel : results) manifest->remove(rel);
    if (config.resume) {
      const std::string previous = describe_previous_run(dir);
      spdlog::info("resume: {}", previous.empty() ? "no earlier run in " + dir : previous);
    } else {
      for (const std::string& rel : checkpoint_outputs) manifest->remove(rel);
      checkpoints.forget_all();
    }
    for (const std::string& rel : folders) fs::create_directories(checkpoints.path(rel));
    io::publish_text(dir + "/config.yaml", to_yaml(config));
  });
}

}  // namespace sf::runtime
