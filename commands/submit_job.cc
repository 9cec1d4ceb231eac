// `shardforge submit`: fills slurm/job.sbatch.in for each job of a chain and hands it to
// sbatch. One process on a login node; no MPI.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "commands/submit.h"
#include "commands/submit_script.h"
#include "io/atomic_file.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"

extern char** environ;

namespace sf::commands {
namespace {

namespace fs = std::filesystem;

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

// `value` for an #SBATCH line; `what` names where it came from ("--time (slurm.time)").
std::string sbatch_value(const std::string& what, const std::string& value) {
  const std::string error = sbatch_value_error(value);
  if (!error.empty()) throw runtime::ConfigError(what + ": " + error);
  return value;
}

std::string count_value(int n) { return n > 0 ? std::to_string(n) : ""; }

// The script of each job: submit.sbatch for one job, submit-<command>.sbatch in a chain.
std::string script_name(const std::vector<SubmitJob>& jobs, const SubmitJob& job) {
  return jobs.size() == 1 ? "submit.sbatch" : "submit-" + job.command + ".sbatch";
}

}  // namespace

std::string chain_error(const std::vector<std::string>& commands) {
  if (commands.empty()) return "no command given";
  std::string producer;  // the command that makes output.dir, once one in the chain does
  for (size_t i = 0; i < commands.size(); ++i) {
    const std::string& command = commands[i];
    for (size_t j = 0; j < i; ++j)
      if (commands[j] == command) return "`" + command + "` is listed twice";
    const runtime::RunDirRole role = runtime::run_dir_role(command);
    if (role.kind == runtime::RunDirRole::kReadOnly) continue;
    if (producer.empty()) {
      if (role.kind == runtime::RunDirRole::kProducer) producer = command;
      continue;
    }
    if (role.kind == runtime::RunDirRole::kProducer)
      return "`" + command + "` cannot follow `" + producer +
             "`: both make output.dir, and a run directory belongs to the command that made "
             "it; give them separate output.dir (two submits, the second with --after)";
    if (role.producer != producer && role.also != producer) {
      const std::string makers =
          "`" + role.producer + "`" + (role.also.empty() ? "" : " or a `" + role.also + "`");
      return "`" + command + "` cannot follow `" + producer +
             "`: it works in the run directory of a " + makers;
    }
  }
  return "";
}

std::string job_script(const runtime::Config& config, const std::vector<std::string>& overrides,
                       const SubmitOptions& options, const SubmitJob& job,
                       const std::string& shardforge, const std::string& workdir) {
  const runtime::SlurmConfig& slurm = config.slurm;
  if (options.resume && !job.resumable)
    throw runtime::ConfigError("--resume: `" + job.command + "` has no checkpoints to resume from");
  std::string job_name = first_set(options.job_name, slurm.job_name);
  if (job_name.empty()) job_name = "shardforge-" + job.command;
  int ntasks = first_set(options.ntasks, slurm.ntasks);
  int ntasks_per_node = first_set(options.ntasks_per_node, slurm.ntasks_per_node);
  if (ntasks == 0 && ntasks_per_node == 0) ntasks_per_node = 1;

  // Absolute paths: the job runs elsewhere, but in this working directory (config paths are
  // relative to it).
  const fs::path dir = fs::absolute(config.output.dir).lexically_normal();
  // The job's log: --output is a filename pattern, so a '%' of output.dir is doubled.
  const std::string log_prefix = (dir / ("slurm-" + job.command + "-")).string();
  const std::string log_pattern = filename_pattern_literal(log_prefix) + "%j.log";

  std::string set_args;
  for (const std::string& text : overrides) set_args += " --set " + shell_quote(text);
  // The flags were checked on the command line; a value from the config is checked here.
  for (const std::string& arg : options.sbatch_args) {
    const std::string error = sbatch_arg_error(arg);
    if (!error.empty()) throw runtime::ConfigError("--sbatch-arg: " + error);
  }
  for (const auto& [flag, value] :
       {std::pair{"--mem", options.mem}, {"--mem-per-cpu", options.mem_per_cpu}}) {
    const std::string error = memory_size_error(value);
    if (!value.empty() && !error.empty())
      throw runtime::ConfigError(std::string(flag) + ": " + error);
  }
  if (!options.mem.empty() && !options.mem_per_cpu.empty())
    throw runtime::ConfigError("--mem and --mem-per-cpu: give one (Slurm refuses both)");
  if (!job.after.empty() && !job_id_error(job.after).empty())
    throw runtime::ConfigError("--after: " + job_id_error(job.after));

  TemplateValues values;
  values.text = {
      {"JOB_NAME", sbatch_value("--job-name (slurm.job_name)", job_name)},
      {"NODES", count_value(first_set(options.nodes, slurm.nodes))},
      {"NTASKS", count_value(ntasks)},
      {"NTASKS_PER_NODE", count_value(ntasks_per_node)},
      {"CPUS_PER_TASK", count_value(first_set(options.cpus_per_task, slurm.cpus_per_task))},
      {"MEM", sbatch_value("--mem", options.mem)},
      {"MEM_PER_CPU", sbatch_value("--mem-per-cpu", options.mem_per_cpu)},
      {"GRES", sbatch_value("--gres", options.gres)},
      {"CONSTRAINT", sbatch_value("--constraint", options.constraint)},
      {"TIME", sbatch_value("--time (slurm.time)", first_set(options.time, slurm.time))},
      {"PARTITION", sbatch_value("--partition (slurm.partition)",
                                 first_set(options.partition, slurm.partition))},
      {"ACCOUNT",
       sbatch_value("--account (slurm.account)", first_set(options.account, slurm.account))},
      {"QOS", sbatch_value("--qos", options.qos)},
      {"DEPENDENCY", job.after.empty() ? "" : "afterok:" + job.after},
      {"WORKDIR", sbatch_value("the working directory", workdir)},
      {"LOG", sbatch_value("the log path (output.dir)", log_pattern)},
      {"SHARDFORGE", shell_quote(shardforge)},
      {"COMMAND", shell_quote(job.command)},
      {"CONFIG", shell_quote(fs::absolute(config.source).lexically_normal().string())},
      {"OVERRIDES", set_args},
      {"RUN_DIR", shell_quote(dir.string())},
  };
  values.flags = {
      {"EXCLUSIVE", options.exclusive},
      {"REQUEUE", options.requeue},
      {"RESUME", options.resume},
      {"RESUMABLE", job.resumable},
  };
  values.lists = {{"SBATCH_ARGS", options.sbatch_args}};
  return fill_job_template(values);
}

int submit_job(const runtime::Config& config, const std::vector<std::string>& overrides,
               const SubmitOptions& options, const std::vector<SubmitJob>& jobs_in) {
  std::vector<std::string> commands;
  for (const SubmitJob& job : jobs_in) commands.push_back(job.command);
  const std::string error = chain_error(commands);
  if (!error.empty()) throw runtime::ConfigError("--command: " + error);
  std::vector<SubmitJob> jobs = jobs_in;
  jobs.front().after = options.after;

  const std::string shardforge = this_binary();
  const std::string workdir = fs::current_path().string();
  const fs::path dir = fs::absolute(config.output.dir).lexically_normal();
  // Every script is checked before anything is written or submitted.
  for (const SubmitJob& job : jobs)
    job_script(config, overrides, options, job, shardforge, workdir);
  runtime::make_run_dir(dir.string());

  const bool chain = jobs.size() > 1;
  std::string submitted, submitted_ids;  // "build (job 12), eval (job 13)", "12 13"
  for (size_t i = 0; i < jobs.size(); ++i) {
    SubmitJob& job = jobs[i];
    const std::string script_path = (dir / script_name(jobs, job)).string();
    const std::string script = job_script(config, overrides, options, job, shardforge, workdir);
    io::publish_text(script_path, script);
    if (options.dry_run) {
      if (chain) std::printf("==> %s <==\n", script_path.c_str());
      std::fputs(script.c_str(), stdout);
      std::fflush(stdout);
      spdlog::info("dry run: wrote {}; `sbatch {}{}` submits it", script_path,
                   i > 0 ? "--dependency=afterok:<job id of " + jobs[i - 1].command + "> " : "",
                   script_path);
      continue;
    }
    std::string job_id;
    try {
      job_id = sbatch(script_path);
    } catch (const std::exception& e) {
      if (submitted.empty()) throw;
      throw std::runtime_error(std::string(e.what()) + "; the chain stops at `" + job.command +
                               "`: submitted " + submitted + " (`scancel " + submitted_ids +
                               "` drops " + (i > 1 ? "them" : "it") + ")");
    }
    const std::string log_path = (dir / ("slurm-" + job.command + "-" + job_id + ".log")).string();
    if (chain) {
      std::printf("submitted %s: job %s\n  script  %s\n  log     %s\n", job.command.c_str(),
                  job_id.c_str(), script_path.c_str(), log_path.c_str());
    } else {
      std::printf("job     %s\nscript  %s\nlog     %s\n", job_id.c_str(), script_path.c_str(),
                  log_path.c_str());
    }
    std::fflush(stdout);
    submitted += (submitted.empty() ? "" : ", ") + job.command + " (job " + job_id + ")";
    submitted_ids += (submitted_ids.empty() ? "" : " ") + job_id;
    if (i + 1 < jobs.size()) jobs[i + 1].after = job_id;
  }
  return 0;
}

}  // namespace sf::commands
