// `shardforge status RUN_DIR_OR_CONFIG`: where the run in a run directory is, read from the files
// the run keeps there (status.json, run.json, the completion markers, the ranks' progress
// records), plus the Slurm job's state. One process, no MPI, read-only. The parts below are plain
// functions of what was read, so that tests give them files' contents instead of files.
#pragma once

#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/config.h"

namespace sf::commands {

// The stages the run planned, in order: status.json's "stages" (the command's stage runner
// records them, runtime::plan_stages), else the stages run.json recorded for `command` (a run
// of an older shardforge). Empty when neither says.
std::vector<std::string> planned_stages(const nlohmann::json& status, const nlohmann::json& run,
                                        const std::string& command);

// Whether the process that wrote status.json still runs.
enum class RunProcess { kAlive, kGone, kElsewhere };

// What `status` read from a run directory.
struct StatusFacts {
  std::string dir;
  std::string manifest_command;     // .shardforge/manifest.json's command; "" when none
  nlohmann::json status;            // status.json; null when none or unreadable
  nlohmann::json run;               // run.json; null when none or unreadable
  std::vector<std::string> stages;  // planned_stages()
  // Per stage with a completion marker: "verified (sizes)", "N marker(s) in checkpoints/add/"
  // (a marker per piece or rank), or why not ("stale: index.faiss has 812 bytes, marker says
  // 9000"). No entry: no marker.
  std::map<std::string, std::string> markers;
  std::vector<nlohmann::json> progress;  // the ranks' progress records, both slots (runtime/stop.h)
  RunProcess process = RunProcess::kGone;
  std::time_t now = 0;
  std::string slurm_state;  // squeue / sacct; "" when unknown
};

// The report `status --json` prints: {"run_dir", "command", "state": "running" | "done" |
// "failed" | "stopped" | "killed" | "unknown", "state_text", "stage", "ranks", "pid", "host",
// "started", "updated", "message", "error": {"rank", "message"} | null, "stages": [{"name",
// "state": "done" | "running" | "stopped" | "failed" | "killed" | "not started", "marker",
// "seconds": [per rank], "peak_rss_mib": [per rank]}], "progress": [{"rank", "step", "done",
// "total", "percent", "rate", "eta_seconds", "age_seconds"}], "slurm": {"job_id", "state"}}.
nlohmann::json status_report(const StatusFacts& facts);
// The same as text, for people.
std::string format_status(const nlohmann::json& report);

// "2026-12-04T21:40:48Z" -> Unix seconds; -1 when it is not that form.
std::time_t parse_utc_text(const std::string& text);

}  // namespace sf::commands
