// `shardforge status RUN_DIR_OR_CONFIG`: see commands/status.h.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <regex>
#include <sstream>

#include "commands/commands.h"
#include "commands/status.h"
#include "runtime/run_dir.h"
#include "commands/run_files.h"
#include "runtime/config.h"
#include "runtime/run_lock.h"
#include "runtime/stop.h"

namespace sf::commands {
namespace fs = std::filesystem;

std::vector<std::string> planned_stages(const nlohmann::json& status, const nlohmann::json& run,
                                        const std::string& command) {
  std::vector<std::string> names;
  if (status.is_object() && status.contains("stages") && status["stages"].is_array()) {
    for (const nlohmann::json& name : status["stages"])
      if (name.is_string()) names.push_back(name.get<std::string>());
    return names;
  }
  if (run.is_object() && run.contains("commands") && run["commands"].is_object() &&
      run["commands"].contains(command))
    for (const nlohmann::json& s : run["commands"][command].value("stages", nlohmann::json::array()))
      if (s.is_object() && s.contains("name") && s["name"].is_string())
        names.push_back(s["name"].get<std::string>());
  return names;
}

std::time_t parse_utc_text(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  if (in.fail()) return -1;
  return timegm(&tm);
}

namespace {

using nlohmann::json;

std::string text_of(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// The rank a status.json names for its error: error_rank, else "failed on rank N" in the message.
json error_rank(const json& status) {
  const int rank = status.value("error_rank", -1);
  if (rank >= 0) return rank;
  std::smatch m;
  const std::string message = text_of(status, "message");
  if (std::regex_search(message, m, std::regex("failed on rank ([0-9]+)"))) return std::stoi(m[1]);
  return nullptr;
}

// The progress records of `stage` since it began (stage_started: a record of an earlier run
// of the same stage is older).
json stage_progress(const StatusFacts& facts, const std::string& stage) {
  const std::time_t since = parse_utc_text(text_of(facts.status, "stage_started"));
  // Each rank's latest record: of its two slots, the higher seq.
  std::map<int, const json*> latest;
  for (const json& r : facts.progress) {
    if (!r.is_object()) continue;
    const json*& best = latest[r.value("rank", 0)];
    if (best == nullptr || r.value("seq", int64_t{0}) > best->value("seq", int64_t{0})) best = &r;
  }
  json out = json::array();
  for (const auto& [rank, record] : latest) {
    const json& r = *record;
    if (text_of(r, "stage") != stage) continue;
    const double updated = r.value("updated", 0.0), started = r.value("step_started", 0.0);
    if (since >= 0 && updated + 1 < static_cast<double>(since)) continue;
    const int64_t done = r.value("done", int64_t{0}), total = r.value("total", int64_t{0});
    const double secs = updated - started;
    const int64_t first = r.value("first_done", int64_t{0});
    const double rate = secs > 0 ? static_cast<double>(done - first) / secs : 0;
    json p = {{"rank", r.value("rank", 0)},
              {"step", text_of(r, "step")},
              {"done", done},
              {"total", total},
              {"percent",
               total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0},
              {"rate", rate},
              {"eta_seconds", nullptr},
              {"age_seconds", std::max(0.0, static_cast<double>(facts.now) - updated)}};
    if (rate > 0 && done < total) p["eta_seconds"] = static_cast<double>(total - done) / rate;
    out.push_back(p);
  }
  return out;
}

}  // namespace

nlohmann::json status_report(const StatusFacts& facts) {
  const json& status = facts.status;
  const bool has_status = status.is_object();
  std::string command = has_status ? text_of(status, "command") : facts.manifest_command;
  std::string state = has_status ? text_of(status, "state") : "unknown";
  const std::string stage = has_status ? text_of(status, "stage") : "";
  if (state == "running" && facts.process == RunProcess::kGone) state = "killed";

  // run.json's figures of this command's stages (written when the command finished), in its
  // order.
  std::map<std::string, json> figures;
  std::vector<std::string> recorded;
  if (facts.run.is_object() && facts.run.contains("commands") &&
      facts.run["commands"].contains(command))
    for (const json& s : facts.run["commands"][command].value("stages", json::array()))
      if (s.is_object()) {
        figures[text_of(s, "name")] = s;
        recorded.push_back(text_of(s, "name"));
      }

  // The command's stages; any the run recorded that the list lacks (a newer shardforge) at the end.
  std::vector<std::string> names = facts.stages;
  auto add_name = [&](const std::string& name) {
    if (!name.empty() && name != "startup" &&
        std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  };
  for (const std::string& name : recorded) add_name(name);
  add_name(stage);
  const auto at = std::find(names.begin(), names.end(), stage);
  const long current = at == names.end() ? -1 : at - names.begin();

  json stages = json::array();
  for (long i = 0; i < static_cast<long>(names.size()); ++i) {
    const std::string& name = names[i];
    const auto marker = facts.markers.find(name);
    std::string s;
    if (state == "done")
      s = "done";
    else if (state == "unknown")
      s = marker != facts.markers.end() ? "done" : "unknown";
    else if (current < 0 || i > current)
      s = "not started";
    else
      s = i < current ? "done" : state;
    json entry = {{"name", name},
                  {"state", s},
                  {"marker", marker != facts.markers.end() ? json(marker->second) : json(nullptr)}};
    if (const auto f = figures.find(name); f != figures.end() && s == "done") {
      entry["seconds"] = f->second.value("seconds", json::array());
      entry["peak_rss_mib"] = f->second.value("peak_rss_mib", json::array());
    }
    stages.push_back(entry);
  }

  const std::string since = text_of(status, "stage_started");
  const std::string pid = has_status ? std::to_string(status.value("pid", 0)) : "?";
  const std::string host = text_of(status, "host");
  std::string state_text;
  if (state == "running" && facts.process == RunProcess::kElsewhere)
    state_text = "running in stage '" + stage + "' on host " + host +
                 " (status.json says so; its pid cannot be checked from here)";
  else if (state == "running")
    state_text = "running in stage '" + stage + "'" + (since.empty() ? "" : " since " + since) +
                 " (pid " + pid + ")";
  else if (state == "killed")
    state_text = "ended without a word (killed?) in stage '" + stage + "': status.json says " +
                 "running, but its pid " + pid + " is gone; rerun with --resume";
  else if (state == "done")
    state_text = "done (" + text_of(status, "updated") + ")";
  else if (state == "stopped" || state == "failed")
    state_text = state + " in stage '" + stage + "'";
  else if (has_status)
    state_text = state;
  else
    state_text = "unknown: no status.json (a shardforge older than status.json made it)";

  json error = nullptr;
  if (state == "failed")
    error = {{"rank", error_rank(status)}, {"message", text_of(status, "message")}};

  json progress = json::array();
  if (state != "done" && state != "unknown" && !stage.empty())
    progress = stage_progress(facts, stage);

  return {{"run_dir", facts.dir},
          {"command", command},
          {"state", state},
          {"state_text", state_text},
          {"stage", stage.empty() ? json(nullptr) : json(stage)},
          {"ranks", has_status ? status.value("ranks", 0) : 0},
          {"pid", has_status ? status.value("pid", 0) : 0},
          {"host", host},
          {"started", text_of(status, "started")},
          {"updated", text_of(status, "updated")},
          {"message", text_of(status, "message")},
          {"error", error},
          {"stages", stages},
          {"progress", progress},
          {"slurm", {{"job_id", text_of(status, "slurm_job_id")}, {"state", facts.slurm_state}}}};
}

std::string format_status(const nlohmann::json& report) {
  std::ostringstream out;
  char line[512];
  auto text = [](const json& j, const char* key) { return text_of(j, key); };
  out << "run directory  " << text(report, "run_dir") << "\n";
  const std::string command = text(report, "command");
  out << "command        " << (command.empty() ? "(unknown)" : command);
  if (report.value("ranks", 0) > 0) out << ", " << report["ranks"].get<int>() << " rank(s)";
  if (!text(report, "started").empty()) out << ", started " << text(report, "started");
  if (!text(report, "host").empty()) out << " on " << text(report, "host");
  out << "\n";
  out << "state          " << text(report, "state_text") << "\n";
  const json& slurm = report["slurm"];
  if (!text(slurm, "job_id").empty())
    out << "slurm job      " << text(slurm, "job_id") << ": "
        << (text(slurm, "state").empty() ? "state unknown (no squeue / sacct, or the job is gone)"
                                         : text(slurm, "state"))
        << "\n";
  if (report["error"].is_object()) {
    const json& error = report["error"];
    out << "last error     "
        << (error["rank"].is_null() ? ""
                                    : "rank " + std::to_string(error["rank"].get<int>()) + ": ")
        << text(error, "message") << "\n";
  } else if (text(report, "state") == "stopped" && !text(report, "message").empty()) {
    out << "message        " << text(report, "message") << "\n";
  }
  if (!report["stages"].empty()) out << "stages:\n";
  for (const json& s : report["stages"]) {
    std::string state = text(s, "state");
    if (s["marker"].is_string()) {
      const std::string marker = s["marker"].get<std::string>();
      state += (std::isdigit(static_cast<unsigned char>(marker[0])) ? ", " : ", marker ") + marker;
    }
    std::snprintf(line, sizeof(line), "  %-13s %s", text(s, "name").c_str(), state.c_str());
    out << line;
    if (s.contains("seconds") && !s["seconds"].empty()) {
      std::string secs, rss;
      for (const json& v : s["seconds"]) {
        std::snprintf(line, sizeof(line), "%s%.2f", secs.empty() ? "" : " ", v.get<double>());
        secs += line;
      }
      for (const json& v : s["peak_rss_mib"]) {
        std::snprintf(line, sizeof(line), "%s%.1f", rss.empty() ? "" : " ", v.get<double>());
        rss += line;
      }
      out << "  (per rank: seconds " << secs << "; peak MiB " << rss << ")";
    }
    out << "\n";
  }
  if (!report["progress"].empty())
    out << "progress of '" << text(report, "stage") << "' (per rank, last record):\n";
  for (const json& p : report["progress"]) {
    const std::string step = text(p, "step");
    if (stages::counts_bytes(step)) {
      std::snprintf(
          line, sizeof(line), "  rank %-4d %s: %s/%s (%.1f%%), %s/s", p["rank"].get<int>(),
          step.c_str(), runtime::human_bytes(static_cast<uint64_t>(p["done"].get<int64_t>())).c_str(),
          runtime::human_bytes(static_cast<uint64_t>(p["total"].get<int64_t>())).c_str(),
          p["percent"].get<double>(), runtime::human_bytes(static_cast<uint64_t>(p["rate"].get<double>())).c_str());
    } else {
      std::snprintf(line, sizeof(line), "  rank %-4d %s: %lld/%lld (%.1f%%), %.0f/s",
                    p["rank"].get<int>(), step.c_str(),
                    static_cast<long long>(p["done"].get<int64_t>()),
                    static_cast<long long>(p["total"].get<int64_t>()), p["percent"].get<double>(),
                    p["rate"].get<double>());
    }
    out << line;
    if (p["eta_seconds"].is_number())
      out << ", ETA " << runtime::format_seconds(p["eta_seconds"].get<double>());
    out << " (" << runtime::format_seconds(p["age_seconds"].get<double>()) << " ago)\n";
  }
  return out.str();
}

namespace {

// The marker of `stage`, checked cheaply: every output it lists still has its recorded size.
// A stage with a marker per piece or per rank (add, read+sketch): how many. "" when there is
// no marker.
std::string check_marker(const std::string& dir, const std::string& stage) {
  const std::string path = dir + "/checkpoints/" + stage + ".json";
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    const json marker = read_json_file(path);
    if (!marker.is_object()) return "unreadable";
    for (const json& o : marker.value("outputs", json::array())) {
      const std::string file = text_of(o, "path");
      const auto bytes = fs::file_size(dir + "/" + file, ec);
      if (ec) return "stale: " + file + " is missing";
      if (bytes != o.value("bytes", uintmax_t{0}))
        return "stale: " + file + " has " + std::to_string(bytes) + " bytes, marker says " +
               std::to_string(o.value("bytes", uintmax_t{0}));
    }
    return "verified (sizes)";
  }
  // read+sketch marks each rank's sketch in checkpoints/sketch/ (pipeline/text_dedup.h).
  const std::string folder = "checkpoints/" + (stage == "read+sketch" ? "sketch" : stage) + "/";
  if (!fs::is_directory(dir + "/" + folder, ec)) return "";
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/" + folder, ec))
    n += e.is_regular_file() && e.path().extension() == ".json";
  return n == 0 ? "" : std::to_string(n) + " marker(s) in " + folder;
}

// `program` is an executable on PATH.
bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string d;
  while (std::getline(dirs, d, ':'))
    if (!d.empty() && ::access((d + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

// The first line `command` prints (stderr discarded); "" when it fails.
std::string first_line(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen((command + " 2>/dev/null").c_str(), "r"),
                                             ::pclose);
  if (!pipe) return "";
  char buf[256];
  std::string out;
  if (std::fgets(buf, sizeof(buf), pipe.get()) != nullptr) out = buf;
  while (std::fgetc(pipe.get()) != EOF) {
  }
  const auto end = out.find_last_not_of(" \t\r\n");
  out.erase(end == std::string::npos ? 0 : end + 1);
  const auto begin = out.find_first_not_of(" \t");
  return begin == std::string::npos ? "" : out.substr(begin);
}

// The job's state from squeue (queued or running), else sacct (finished); "" when neither
// knows it or neither is installed.
std::string slurm_state(const std::string& job_id) {
  if (job_id.empty() || job_id.find_first_not_of("0123456789_.") != std::string::npos) return "";
  std::string state;
  if (on_path("squeue")) state = first_line("squeue -h -j " + job_id + " -o %T");
  if (state.empty() && on_path("sacct"))
    state = first_line("sacct -n -X -j " + job_id + " -o State");
  return state;
}

RunProcess run_process(const json& status) {
  const std::string host = text_of(status, "host");
  if (!host.empty() && host != runtime::host_name()) return RunProcess::kElsewhere;
  if (status.value("pid", 0L) <= 0) return RunProcess::kGone;
  return runtime::local_process_gone(status).empty() ? RunProcess::kAlive : RunProcess::kGone;
}

}  // namespace

int status_job(const StatusOptions& options) {
  std::error_code ec;
  RunFiles files = read_run_files(options.path);
  const std::string& dir = files.dir;
  const json& manifest = files.manifest;
  StatusFacts facts;
  facts.dir = dir;
  facts.status = files.status;
  facts.run = files.run;
  facts.manifest_command = text_of(manifest, "command");
  const std::string command =
      facts.status.is_object() ? text_of(facts.status, "command") : facts.manifest_command;
  facts.stages = planned_stages(facts.status, facts.run, command);
  std::vector<std::string> names = facts.stages;
  names.push_back(text_of(facts.status, "stage"));
  for (const std::string& stage : names)
    if (!stage.empty() && stage.find('/') == std::string::npos)
      if (std::string m = check_marker(dir, stage); !m.empty()) facts.markers[stage] = m;
  const std::string progress_dir = fs::path(runtime::progress_path(dir, 0, 0)).parent_path();
  if (fs::is_directory(progress_dir, ec))
    for (const auto& e : fs::directory_iterator(progress_dir, ec))
      if (e.path().extension() == ".json") facts.progress.push_back(read_json_file(e.path()));
  if (facts.status.is_object()) facts.process = run_process(facts.status);
  facts.now = std::time(nullptr);
  facts.slurm_state = slurm_state(text_of(facts.status, "slurm_job_id"));

  const json report = status_report(facts);
  if (options.json)
    std::printf("%s\n", report.dump().c_str());
  else
    std::printf("%s", format_status(report).c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace sf::commands
