// `shardforge submit`: fills slurm/job.sbatch.in for one run and hands it to sbatch. One
// process on a login node; no MPI.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "io/atomic_file.h"
#include "commands/commands.h"
#include "commands/sbatch_template.h"  // kSbatchTemplate, generated from slurm/job.sbatch.in
#include "runtime/run_dir.h"

extern char** environ;

namespace sf::commands {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Filling the template.

// `text` as one shell word: unchanged when it is plainly safe, else in single quotes.
std::string shell_quote(const std::string& text) {
  const bool plain = !text.empty() && text.find_first_not_of(
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_./:=,+@%-") == std::string::npos;
  if (plain) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A value for an #SBATCH line: sbatch splits those lines at white space and quotes.
std::string sbatch_value(const std::string& what, const std::string& value) {
  for (char c : value) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '\\')
      throw std::runtime_error(what + " '" + value +
                               "' cannot go on an #SBATCH line: no spaces, quotes or backslashes");
  }
  return value;
}

// `path` as a literal in an sbatch filename pattern (--output, --error, --input; sbatch(1),
// "filename pattern"), where %j, %x, ... are replaced and "%%" stands for '%'.
std::string filename_pattern_literal(const std::string& path) {
  std::string out;
  for (char c : path) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

std::string count_value(int n) { return n > 0 ? std::to_string(n) : ""; }

constexpr const char* kNameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_";

// Replaces every @NAME@ (NAME in [A-Z_]) with values.at(NAME); drops an #SBATCH line in which a
// value is empty. Any other '@' stays. An unknown NAME is a bug in the template: throws.
std::string fill_template(const std::string& text,
                          const std::map<std::string, std::string>& values) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    std::string filled;
    bool empty_value = false;
    size_t pos = 0;
    while (pos < line.size()) {
      const size_t open = line.find('@', pos);
      const size_t close = open == std::string::npos ? open : line.find('@', open + 1);
      if (close == std::string::npos) break;
      const std::string name = line.substr(open + 1, close - open - 1);
      const bool is_name = !name.empty() && name.find_first_not_of(kNameChars) == std::string::npos;
      if (!is_name) {  // a literal '@': keep it, look again from the next one
        filled += line.substr(pos, close - pos);
        pos = close;
        continue;
      }
      auto it = values.find(name);
      if (it == values.end())
        throw std::logic_error("slurm/job.sbatch.in: unknown placeholder @" + name + "@");
      filled += line.substr(pos, open - pos) + it->second;
      empty_value = empty_value || it->second.empty();
      pos = close + 1;
    }
    if (pos < line.size()) filled += line.substr(pos);
    if (empty_value && line.rfind("#SBATCH", 0) == 0) continue;
    out += filled + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running sbatch.

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// A pipe whose ends close on destruction (and on exec).
struct Pipe {
  Fd read, write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

// Owns posix_spawn_file_actions_t.
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

struct ProcessResult {
  int exit_code = 0;  // 128 + signal when killed by one
  std::string out, err;
};

// Runs argv (argv[0] looked up on PATH) with stdin from /dev/null, collects its output and
// waits for it. Throws std::system_error (the errno; ENOENT: not found) when it cannot start.
ProcessResult run_process(const std::vector<std::string>& argv) {
  Pipe out, err;
  SpawnActions actions;
  posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), out.write.get(), 1);
  posix_spawn_file_actions_adddup2(actions.get(), err.write.get(), 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), argv[0]);
  out.write.reset();
  err.write.reset();

  ProcessResult result;
  pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  for (int open = 2; open > 0;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // closed (poll ignores negative descriptors)
        --open;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(argv[0] + ": waitpid: " + std::strerror(errno));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

// `sbatch --parsable SCRIPT`; returns the job id. Throws naming the cause: sbatch missing, or
// its exit code and stderr.
std::string sbatch(const std::string& script) {
  ProcessResult result;
  try {
    result = run_process({"sbatch", "--parsable", script});
  } catch (const std::system_error& e) {
    if (e.code().value() == ENOENT) {
      const char* path = std::getenv("PATH");
      throw std::runtime_error(
          "sbatch not found on PATH (" + std::string(path ? path : "") +
          "): run submit where Slurm's client commands are installed (Debian: slurm-client), "
          "or use --dry-run and submit " +
          script + " yourself");
    }
    throw std::runtime_error(std::string("cannot run sbatch: ") + e.what());
  }
  const std::string err = trim(result.err);
  if (result.exit_code != 0) {
    throw std::runtime_error("sbatch " + script + " failed (exit " +
                             std::to_string(result.exit_code) + ")" +
                             (err.empty() ? "" : ": " + err));
  }
  if (!err.empty()) spdlog::warn("sbatch: {}", err);
  // --parsable prints "<job id>" or "<job id>;<cluster>".
  const std::string id = trim(trim(result.out).substr(0, result.out.find(';')));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("sbatch printed no job id: '" + trim(result.out) + "'");
  return id;
}

// The running binary, so that the job starts the same shardforge.
std::string this_binary() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find this binary (/proc/self/exe): " + ec.message());
  return exe.string();
}

template <typename T>
T first_set(const T& flag, const T& config) {
  return flag != T{} ? flag : config;
}

}  // namespace

int submit_job(const runtime::Config& config, const std::vector<std::string>& overrides,
               const SubmitOptions& options) {
  const runtime::SlurmConfig& slurm = config.slurm;
  const std::string& command = options.command;
  if (options.resume && !options.resumable)
    throw std::runtime_error("--resume: `" + command + "` has no checkpoints to resume from");
  std::string job_name = first_set(options.job_name, slurm.job_name);
  if (job_name.empty()) job_name = "shardforge-" + command;
  int ntasks = first_set(options.ntasks, slurm.ntasks);
  int ntasks_per_node = first_set(options.ntasks_per_node, slurm.ntasks_per_node);
  if (ntasks == 0 && ntasks_per_node == 0) ntasks_per_node = 1;

  // Absolute paths: the job runs elsewhere, but in this working directory (config paths are
  // relative to it).
  const fs::path workdir = fs::current_path();
  const fs::path dir = fs::absolute(config.output.dir).lexically_normal();
  const std::string script_path = (dir / "submit.sbatch").string();
  // The job's log: --output is a filename pattern, so a '%' of output.dir is doubled.
  const std::string log_prefix = (dir / ("slurm-" + command + "-")).string();
  const std::string log_pattern = filename_pattern_literal(log_prefix) + "%j.log";

  std::string set_args;
  for (const std::string& text : overrides)
    set_args += (set_args.empty() ? "" : " ") + std::string("--set ") + shell_quote(text);
  const std::map<std::string, std::string> values = {
      {"JOB_NAME", sbatch_value("job name", job_name)},
      {"NODES", count_value(first_set(options.nodes, slurm.nodes))},
      {"NTASKS", count_value(ntasks)},
      {"NTASKS_PER_NODE", count_value(ntasks_per_node)},
      {"CPUS_PER_TASK", count_value(first_set(options.cpus_per_task, slurm.cpus_per_task))},
      {"TIME", sbatch_value("time", first_set(options.time, slurm.time))},
      {"PARTITION", sbatch_value("partition", first_set(options.partition, slurm.partition))},
      {"ACCOUNT", sbatch_value("account", first_set(options.account, slurm.account))},
      {"WORKDIR", sbatch_value("working directory", workdir.string())},
      {"LOG", sbatch_value("log path (output.dir)", log_pattern)},
      {"SHARDFORGE", shell_quote(this_binary())},
      {"COMMAND", shell_quote(command)},
      {"CONFIG", shell_quote(fs::absolute(config.source).lexically_normal().string())},
      {"OVERRIDES", set_args},
      {"RESUME", options.resume ? "1" : "0"},
      {"RESUMABLE", options.resumable ? "1" : "0"},
      {"RUN_DIR", shell_quote(dir.string())},
      {"REQUEUE", options.requeue ? "--requeue" : ""},
      {"REQUEUE_ON_STOP", options.requeue ? "1" : "0"},
  };
  const std::string script = fill_template(kSbatchTemplate, values);

  runtime::make_run_dir(dir.string());
  io::publish_text(script_path, script);
  if (options.dry_run) {
    std::fputs(script.c_str(), stdout);
    spdlog::info("dry run: wrote {}; `sbatch {}` submits it", script_path, script_path);
    return 0;
  }

  const std::string job_id = sbatch(script_path);
  const std::string log_path = log_prefix + job_id + ".log";
  std::printf("job     %s\nscript  %s\nlog     %s\n", job_id.c_str(), script_path.c_str(),
              log_path.c_str());
  return 0;
}

}  // namespace sf::commands
