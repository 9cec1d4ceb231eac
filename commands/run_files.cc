#include "commands/run_files.h"

#include <filesystem>
#include <fstream>

#include "runtime/config.h"

namespace sf::commands {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

RunFiles read_run_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  RunFiles files;
  files.dir = path;
  if (!fs::is_directory(path, ec)) {
    if (!fs::is_regular_file(path, ec))
      throw runtime::ConfigError(path + ": no such run directory or config file");
    files.dir = runtime::load_config(path).output.dir;
  }
  files.status = read_json_file(files.dir + "/status.json");
  files.run = read_json_file(files.dir + "/run.json");
  files.manifest = read_json_file(files.dir + "/.shardforge/manifest.json");
  if (!files.status.is_object() && !files.run.is_object() && !files.manifest.is_object())
    throw runtime::ConfigError(files.dir +
                               ": not a run directory (no status.json, run.json or "
                               ".shardforge/manifest.json)");
  return files;
}

}  // namespace sf::commands
