#include "runtime/stop.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "runtime/run_lock.h"

namespace sf::runtime {
namespace {

volatile std::sig_atomic_t g_stop = 0;

// What the handler writes: "shardforge [rank R/N]" and the current stage. Two buffers so the
// handler never reads one being rewritten (a stage change is rare; it flips the index after
// writing the other buffer).
char g_rank_tag[64] = "shardforge";
char g_stage[2][128] = {"startup", "startup"};
std::atomic<int> g_stage_index{0};

void write_text(const char* text) {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

extern "C" void on_stop_signal(int sig) {
  if (g_stop) {  // a second signal: stop now, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop = 1;
  write_text(g_rank_tag);
  write_text(sig == SIGTERM ? ": SIGTERM" : sig == SIGINT ? ": SIGINT" : ": SIGUSR1");
  write_text(" during stage '");
  write_text(g_stage[g_stage_index.load()]);
  write_text("': stopping at the next safe point\n");
}

void set_signal_stage(const std::string& stage) {
  const int next = 1 - g_stage_index.load();
  std::snprintf(g_stage[next], sizeof(g_stage[next]), "%s", stage.c_str());
  g_stage_index.store(next);
}

}  // namespace

void install_stop_handlers(int rank, int size) {
  std::snprintf(g_rank_tag, sizeof(g_rank_tag), "shardforge [rank %d/%d]", rank, size);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

bool stop_requested() { return g_stop != 0; }
void set_stop_requested(bool value) { g_stop = value ? 1 : 0; }

void run_step(cluster::Comm& comm, const std::string& phase,
              const std::function<void()>& local_work) {
  const std::exception_ptr error = cluster::exception_of(local_work);
  if (cluster::agree_or_stop(comm, phase, error, stop_requested())) throw Stopped(phase);
}

namespace {

struct RunStatusState {
  std::string dir, command, stage = "startup";
  std::vector<std::string> stages;  // plan_stages
  std::string started_at, stage_started_at;  // UTC text
  std::string slurm_job_id;  // $SLURM_JOB_ID when the run started
  int rank = 0, size = 1;
  bool started = false;
};

RunStatusState& run_status() {
  static RunStatusState state;
  return state;
}

std::string env_text(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

void write_status(const std::string& state, const std::string& message, int error_rank) {
  const RunStatusState& s = run_status();
  if (!s.started || s.rank != 0 || !std::filesystem::is_directory(s.dir)) return;
  const nlohmann::json status = {{"format_version", 1},
                                 {"command", s.command},
                                 {"stages", s.stages},
                                 {"stage", s.stage},
                                 {"state", state},
                                 {"message", message},
                                 {"error_rank", error_rank},
                                 {"ranks", s.size},
                                 {"pid", ::getpid()},
                                 {"pid_start_ticks", process_start_ticks(::getpid())},
                                 {"host", host_name()},
                                 {"slurm_job_id", s.slurm_job_id},
                                 {"started", s.started_at},
                                 {"stage_started", s.stage_started_at},
                                 {"updated", utc_now_text()}};
  try {
    io::publish_text(s.dir + "/status.json", status.dump(1) + "\n");
  } catch (const std::exception&) {
    // A full or failing disk: the stage's own error says so.
  }
}

}  // namespace

void start_run_status(const std::string& dir, const std::string& command, int rank, int size) {
  RunStatusState& s = run_status();
  s.dir = dir;
  s.command = command;
  s.stages.clear();
  s.rank = rank;
  s.size = size;
  s.started = true;
  s.started_at = s.stage_started_at = utc_now_text();
  s.slurm_job_id = env_text("SLURM_JOB_ID");
}

void plan_stages(const std::vector<std::string>& stages) {
  run_status().stages = stages;
  write_status("running", "", -1);
}

void enter_stage(const std::string& stage) {
  run_status().stage = stage;
  run_status().stage_started_at = utc_now_text();
  set_signal_stage(stage);
  write_status("running", "", -1);
}

void finish_run_status(const std::string& state, const std::string& message, int error_rank) {
  write_status(state, message, error_rank);
}

std::string progress_path(const std::string& dir, int rank, int slot) {
  return dir + "/.shardforge/progress/rank-" + std::to_string(rank) + "-" + std::to_string(slot) +
         ".json";
}

void record_progress(const std::string& step, int64_t done, int64_t total) {
  struct Last {
    std::mutex mutex;
    std::string stage, step;
    double step_started = 0, written = 0;
    int64_t first_done = 0;  // `done` at the step's first report, when step_started was taken
    int64_t seq = 0;         // records written; the next goes to slot seq % 2
  };
  static Last last;
  const RunStatusState& s = run_status();
  if (!s.started) return;
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  std::lock_guard<std::mutex> lock(last.mutex);
  if (step != last.step || s.stage != last.stage) {  // a new step: recorded at once
    last.step = step;
    last.stage = s.stage;
    last.step_started = now;
    last.first_done = done;
  } else if (now - last.written < 1.0) {
    return;
  }
  last.written = now;
  try {
    if (!std::filesystem::is_directory(s.dir + "/.shardforge")) return;
    const std::string path = progress_path(s.dir, s.rank, static_cast<int>(last.seq % 2));
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const nlohmann::json record = {{"format_version", 1}, {"rank", s.rank},
                                   {"seq", ++last.seq},   {"pid", ::getpid()},
                                   {"stage", s.stage},    {"step", step},
                                   {"done", done},        {"total", total},
                                   {"step_started", last.step_started},
                                   {"first_done", last.first_done},
                                   {"updated", now}};
    // Truncated, then written in one call: a reader sees the whole record, or a part that
    // does not parse, and then takes the other slot. No rename: the renames of a run stay
    // the publishing steps (tests/e2e/fault_publish.sh counts them).
    const std::string text = record.dump() + "\n";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    const ssize_t ignored = ::write(fd, text.data(), text.size());
    (void)ignored;
    ::close(fd);
  } catch (const std::exception&) {
    // Progress is a convenience: a full disk is reported by the stage's own writes.
  }
}

std::string current_stage() { return run_status().stage; }

std::string describe_previous_run(const std::string& dir) {
  std::ifstream in(dir + "/status.json");
  if (!in) return "";
  const nlohmann::json s = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (s.is_discarded() || !s.is_object()) return "";
  const std::string state = s.value("state", "?");
  std::string out = "the previous " + s.value("command", std::string("run")) + " (" +
                    std::to_string(s.value("ranks", 0)) + " rank(s), " +
                    s.value("updated", std::string("?")) + ") ";
  if (state == "running")
    return out + "did not finish: it was in stage '" + s.value("stage", std::string("?")) +
           "' when it ended (killed, or a node was lost)";
  out += state == "done" ? "finished" : state + " in stage '" + s.value("stage", std::string("?")) + "'";
  const std::string message = s.value("message", std::string());
  return message.empty() ? out : out + ": " + message;
}

std::string utc_now_text() {
  char text[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace sf::runtime
