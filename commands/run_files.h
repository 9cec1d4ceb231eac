// The files of a run directory that `status` and `report` read: one process, no MPI, read-only.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sf::commands {

struct RunFiles {
  std::string dir;
  nlohmann::json status;    // status.json; null when missing or unreadable
  nlohmann::json run;       // run.json
  nlohmann::json manifest;  // .shardforge/manifest.json
};

// `path`: a run directory, or a config file (its output.dir). Throws runtime::ConfigError when
// it is neither, or when the directory holds none of the three files (not a run directory).
RunFiles read_run_files(const std::string& path);

// A JSON file's contents; null when it is missing or not JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace sf::commands
