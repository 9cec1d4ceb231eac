// shardforge <command> CONFIG.yaml [--set key=value]...
// Run directly, or under mpirun / srun: every rank runs the same command. `submit` is the
// exception: one process without MPI that hands a command to Slurm; `query`, `status` and
// `report` are one plain process too.
#include <omp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string_view>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "commands/dedup.h"
#include "commands/commands.h"
#include "commands/report.h"
#include "commands/run.h"
#include "commands/submit.h"
#include "commands/submit_script.h"
#include "runtime/config.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stop.h"

#ifndef SHARDFORGE_VERSION
#define SHARDFORGE_VERSION "0.0.0"
#endif

namespace {

using JobFn = std::function<int(sf::cluster::Comm&, const sf::runtime::Config&)>;

struct Command {
  const char* name;
  const char* help;
  JobFn run;
  std::initializer_list<std::string_view> required;  // keys this command needs set
  bool checkpointed;  // has --resume (runtime/checkpoint.h)
};

const Command kCommands[] = {
    {"build", "train, build and merge one FAISS IVF index into <output.dir>/index.faiss",
     sf::commands::build_job, {"index.factory"}, true},
    {"eval", "recall@1/10/100 and QPS of <output.dir>/index.faiss per nprobe -> eval.json",
     sf::commands::eval_job, {"eval.queries"}, true},
    {"search", "batched distributed search of search.queries over the sharded layout -> search.h5",
     sf::commands::search_job, {"search.queries"}, true},
    {"info", "show the run directory: index shape, list balance, stage times, recall",
     sf::commands::info_job, {}, false},
    {"dedup", "remove exact and near-duplicate documents -> <output.dir>/kept/, duplicates.jsonl, dedup.json",
     sf::commands::dedup_job, {}, true},
    {"dedup-quality", "after dedup: precision/recall of its duplicate pairs against exact Jaccard -> quality.json",
     sf::commands::dedup_quality_job, {}, false},
    {"run", "the whole pipeline: read, dedup, embed, train, semantic dedup, add, merge -> <output.dir>/index.faiss, ids.jsonl",
     sf::commands::run_job, {}, true},
};

// A count flag: a whole number >= 1. CLI11's PositiveNumber says "Value 0 not in range
// 0.000000 to 1.79769e+308".
const CLI::Validator kPositive(
    [](const std::string& text) -> std::string {
      long long value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size() && value >= 1) return "";
      return "expected a whole number >= 1, got '" + text + "'";
    },
    "POSITIVE");

// `shardforge query RUN_DIR TEXT`: one process, no MPI (see commands/run.h).
CLI::App* add_query_command(CLI::App& app, sf::commands::QueryOptions& options) {
  CLI::App* sub = app.add_subcommand(
      "query", "embed a text as a `run` did and print its nearest documents in RUN_DIR");
  sub->add_option("run_dir", options.run_dir, "output.dir of a `shardforge run`")->required();
  sub->add_option("text", options.text, "the query text")->required();
  sub->add_option("-k", options.k, "neighbours printed")->check(kPositive)->capture_default_str();
  sub->add_option("--nprobe", options.nprobe,
                  "inverted lists searched (default: the run's recommended nprobe, eval.json or "
                  "tune.json, else 8)")
      ->check(kPositive);
  sub->add_option("--chars", options.snippet_chars, "characters of each neighbour's text")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_flag("--json", options.json,
                "one JSON object per hit per line: rank, score, index_id, id, file, line, text");
  return sub;
}

int run_query(const sf::commands::QueryOptions& options) {
  sf::runtime::setup_logging(0, 1, false);
  try {
    return sf::commands::query_job(options);
  } catch (const sf::runtime::ConfigError& e) {
    spdlog::error("config: {}", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {  // the query text itself
    spdlog::error("query: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("query: {}", e.what());
    return 1;
  }
}

// `shardforge status RUN_DIR_OR_CONFIG`: one process, no MPI, read-only (commands/status.h).
CLI::App* add_status_command(CLI::App& app, sf::commands::StatusOptions& options) {
  CLI::App* sub = app.add_subcommand(
      "status", "where the run in a run directory is: state, stages, progress, Slurm job, last error");
  sub->add_option("path", options.path, "a run directory (output.dir), or its config")->required();
  sub->add_flag("--json", options.json, "print one JSON object");
  return sub;
}

int run_status(const sf::commands::StatusOptions& options) {
  sf::runtime::setup_logging(0, 1, false);
  try {
    return sf::commands::status_job(options);
  } catch (const sf::runtime::ConfigError& e) {
    spdlog::error("status: {}", e.what());
    return sf::runtime::kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("status: {}", e.what());
    return sf::runtime::kExitFailed;
  }
}

// `shardforge report RUN_DIR_OR_CONFIG`: one process, no MPI; writes only the page
// (commands/report.h).
CLI::App* add_report_command(CLI::App& app, sf::commands::ReportOptions& options) {
  CLI::App* sub = app.add_subcommand(
      "report", "write RUN_DIR/report.html: plots and tables of the run's stages, memory, lists, "
                "recall, shards and duplicates; one file that opens offline");
  sub->add_option("path", options.run_dir, "a run directory (output.dir), or its config")
      ->required();
  sub->add_option("--output", options.output, "write the page here instead of RUN_DIR/report.html");
  return sub;
}

int run_report(const sf::commands::ReportOptions& options) {
  sf::runtime::setup_logging(0, 1, false);
  try {
    return sf::commands::report_job(options);
  } catch (const sf::runtime::ConfigError& e) {
    spdlog::error("report: {}", e.what());
    return sf::runtime::kExitConfig;
  } catch (const std::exception& e) {
    spdlog::error("report: {}", e.what());
    return sf::runtime::kExitFailed;
  }
}

// A CLI11 check from one of commands/submit_script.h's: CLI11 adds the option's name.
CLI::Validator submit_check(std::string (*error)(const std::string&), const char* what) {
  return CLI::Validator([error](std::string& text) { return error(text); }, what);
}

// Declares `submit` and its flags; the flags fill `options`. --command takes a comma list of the
// commands above.
CLI::App* add_submit_command(CLI::App& app, std::string& config_path,
                             std::vector<std::string>& overrides,
                             sf::commands::SubmitOptions& options) {
  std::vector<std::string> commands;
  for (const Command& c : kCommands) commands.push_back(c.name);
  const CLI::Validator value = submit_check(sf::commands::sbatch_value_error, "VALUE");
  const CLI::Validator memory = submit_check(sf::commands::memory_size_error, "SIZE");
  CLI::App* sub = app.add_subcommand(
      "submit",
      "write <output.dir>/submit.sbatch that runs a command, and submit it with sbatch; a comma "
      "list of commands is a chain of jobs, each after the one before");
  sub->add_option("config", config_path, "YAML config file")->required();
  sub->add_option("--set", overrides, "override a config key, here and in the job (repeatable)");
  sub->add_option("--command", options.commands,
                  "the command the job runs; a comma list (dedup,dedup-quality) submits one job "
                  "each, each waiting for the one before to succeed")
      ->delimiter(',')
      ->check(CLI::IsMember(commands))
      ->capture_default_str();
  sub->add_option("--after", options.after,
                  "a job id: the (first) job starts once that job has succeeded (afterok)")
      ->check(submit_check(sf::commands::job_id_error, "JOBID"));
  sub->add_option("--job-name", options.job_name,
                  "Slurm job name (default: slurm.job_name, else shardforge-<command>)")
      ->check(value);
  sub->add_option("--nodes", options.nodes, "nodes (default: slurm.nodes, 1)")->check(kPositive);
  sub->add_option("--ntasks", options.ntasks, "MPI ranks in all (default: slurm.ntasks)")
      ->check(kPositive);
  sub->add_option("--ntasks-per-node", options.ntasks_per_node,
                  "MPI ranks per node (default: slurm.ntasks_per_node; 1 if no count is set)")
      ->check(kPositive);
  sub->add_option("--cpus-per-task", options.cpus_per_task,
                  "CPUs and OpenMP threads per rank (default: slurm.cpus_per_task, 1)")
      ->check(kPositive);
  CLI::Option* mem =
      sub->add_option("--mem", options.mem, "memory per node, e.g. 64G (K, M, G, T; none: MB)")
          ->check(memory);
  sub->add_option("--mem-per-cpu", options.mem_per_cpu, "memory per CPU, e.g. 4G")
      ->check(memory)
      ->excludes(mem);
  sub->add_option("--gres", options.gres, "generic resources per node, e.g. gpu:2")->check(value);
  sub->add_option("--constraint", options.constraint, "node features, e.g. avx512")->check(value);
  sub->add_flag("--exclusive", options.exclusive, "whole nodes, shared with no other job");
  sub->add_option("--time", options.time, "time limit, e.g. 02:00:00 (default: slurm.time)")
      ->check(value);
  sub->add_option("--partition", options.partition, "partition (default: slurm.partition)")
      ->check(value);
  sub->add_option("--account", options.account, "account (default: slurm.account)")->check(value);
  sub->add_option("--qos", options.qos, "quality of service")->check(value);
  sub->add_option("--sbatch-arg", options.sbatch_args,
                  "any other sbatch option, as --name=value: one #SBATCH line (repeatable)")
      ->check(submit_check(sf::commands::sbatch_arg_error, "ARG"));
  sub->add_flag("--dry-run", options.dry_run, "write and print the script; do not submit");
  sub->add_flag("--resume", options.resume,
                "the job resumes from the checkpoints in output.dir (a requeued job always does)");
  sub->add_flag("--requeue", options.requeue,
                "#SBATCH --requeue; when the ranks stop at a safe point (exit 75: preemption or "
                "time limit) the job requeues itself and resumes");
  sub->set_version_flag("--version", std::string("shardforge ") + SHARDFORGE_VERSION);
  return sub;
}

// `shardforge submit`: one process, before (and without) MPI: it runs on a login node and
// starts sbatch. Exit codes as the other commands: 2 for a bad config, 1 for a failure.
int run_submit(const std::string& config_path, const std::vector<std::string>& overrides,
               const sf::commands::SubmitOptions& options) {
  sf::runtime::setup_logging(0, 1, false);
  try {
    const sf::runtime::Config config = sf::runtime::load_config(config_path, overrides);
    std::vector<sf::commands::SubmitJob> jobs;
    for (const std::string& name : options.commands)
      for (const Command& c : kCommands)
        if (name == c.name) {
          sf::runtime::require(config, c.required);
          jobs.push_back({c.name, c.checkpointed, ""});
        }
    return sf::commands::submit_job(config, overrides, options, jobs);
  } catch (const sf::runtime::ConfigError& e) {
    spdlog::error("config: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("submit: {}", e.what());
    return 1;
  }
}

// The long flags of `sub` and of the top level, as typed ("--resume").
std::vector<std::string> long_flags(const CLI::App& app, const CLI::App& sub) {
  std::vector<std::string> flags;
  for (const CLI::App* a : {&app, &sub})
    for (const CLI::Option* option : a->get_options())
      for (const std::string& name : option->get_lnames()) flags.push_back("--" + name);
  return flags;
}

std::string hint(const std::string& match) {
  return match.empty() ? "" : " (did you mean '" + match + "'?)";
}

// The one line a command-line error prints: CLI11's message, or a plainer one for a missing or
// unknown command, with a "did you mean" where a misspelt command or flag is close to a real
// one (runtime::closest_match, as for config keys). args: argv without the program name.
std::string usage_error(const CLI::App& app, const CLI::ParseError& error,
                        const std::vector<std::string>& args) {
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    commands.push_back(sub->get_name());
  std::string message = error.what();
  std::replace(message.begin(), message.end(), '\n', ' ');
  if (args.empty() || args[0].empty()) {
    std::string list;
    for (const std::string& c : commands) list += (list.empty() ? "" : ", ") + c;
    return "no command given; the commands are " + list;
  }
  if (args[0][0] != '-' && std::find(commands.begin(), commands.end(), args[0]) == commands.end())
    return "unknown command '" + args[0] + "'" +
           hint(sf::runtime::closest_match(args[0], commands));
  if (args[0][0] == '-') return message;
  const CLI::App& sub = *app.get_subcommand(args[0]);
  const std::vector<std::string> flags = long_flags(app, sub);
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") continue;
    const std::string flag = arg.substr(0, arg.find('='));
    // submit --sbatch-arg --name=value: the value is an sbatch option, not one of ours.
    if (flag == "--sbatch-arg" && sub.get_name() == "submit") {
      if (flag.size() == arg.size()) ++i;
      continue;
    }
    if (std::find(flags.begin(), flags.end(), flag) == flags.end())
      return message + hint(sf::runtime::closest_match(flag, flags));
    // submit --command NAME[,NAME]...: each NAME must be a command that runs under MPI.
    if (flag == "--command" && sub.get_name() == "submit") {
      const bool inline_value = flag.size() < arg.size();
      std::istringstream list(inline_value          ? arg.substr(flag.size() + 1)
                              : i + 1 < args.size() ? args[i + 1]
                                                    : "");
      std::vector<std::string> runnable;
      for (const Command& c : kCommands) runnable.emplace_back(c.name);
      for (std::string value; std::getline(list, value, ',');)
        if (!value.empty() && std::find(runnable.begin(), runnable.end(), value) == runnable.end())
          return message + hint(sf::runtime::closest_match(value, runnable));
    }
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardforge: distributed dedup and FAISS index builds over MPI ranks.\n"
               "Run directly, or under mpirun / srun (every rank runs the same command)."};
  app.set_version_flag("--version", std::string("shardforge ") + SHARDFORGE_VERSION);
  app.require_subcommand(1);
  std::string config_path;
  std::vector<std::string> overrides;
  bool verbose = false;
  bool resume = false;
  std::map<std::string, CLI::App*> subs;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->add_option("config", config_path, "YAML config file")->required();
    sub->add_option("--set", overrides,
                    "override a config key: --set index.factory=IVF256,Flat "
                    "--set eval.nprobe=[1,8,32] (repeatable)");
    sub->add_flag("-v,--verbose", verbose, "log info lines from every rank, not only rank 0");
    if (c.checkpointed)
      sub->add_flag("--resume", resume,
                    "keep the checkpoints in output.dir and skip the stages whose completion "
                    "markers verify (a requeued Slurm job passes it)");
    sub->set_version_flag("--version", std::string("shardforge ") + SHARDFORGE_VERSION);
    subs[c.name] = sub;
  }
  sf::commands::SubmitOptions submit;
  CLI::App* submit_cmd = add_submit_command(app, config_path, overrides, submit);
  sf::commands::QueryOptions query;
  CLI::App* query_cmd = add_query_command(app, query);
  sf::commands::StatusOptions status;
  CLI::App* status_cmd = add_status_command(app, status);
  sf::commands::ReportOptions report;
  CLI::App* report_cmd = add_report_command(app, report);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print their text and exit 0; any other error is one line, exit 2.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    sf::runtime::setup_logging(0, 1, false);
    spdlog::error("command line: {}", usage_error(app, e, {argv + 1, argv + argc}));
    return sf::runtime::kExitConfig;
  }
  if (submit_cmd->parsed()) return run_submit(config_path, overrides, submit);
  if (query_cmd->parsed()) return run_query(query);
  if (status_cmd->parsed()) return run_status(status);
  if (report_cmd->parsed()) return run_report(report);

  sf::cluster::MpiSession mpi(&argc, &argv);
  sf::cluster::Comm& comm = mpi.world();
  sf::runtime::setup_logging(comm.rank(), comm.size(), verbose);

  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (subs[c.name]->parsed()) command = &c;
  // Only commands that stop at safe points and resume catch SIGTERM; the others keep its
  // default (the process ends at once; their outputs are published atomically, so nothing
  // half-written remains) rather than ignoring it until they finish.
  if (command->checkpointed) sf::runtime::install_stop_handlers(comm.rank(), comm.size());

  namespace pl = sf::runtime;
  // The lock on output.dir: released after status.json records how the command ended.
  pl::RunDirLease lease;
  try {
    // `shardforge info RUN_DIR` reads RUN_DIR/config.yaml.
    const bool read_only = pl::run_dir_role(command->name).kind == pl::RunDirRole::kReadOnly;
    if (read_only && std::filesystem::is_directory(config_path)) config_path += "/config.yaml";
    // Every rank parses the same file, so a config error is the same on every rank.
    pl::Config config = pl::load_config(config_path, overrides);
    config.resume = resume;
    pl::require(config, command->required);
    // A second run in output.dir, or another command's run directory, is refused (exit 2).
    lease = pl::open_run_dir(comm, config, command->name);
    // Read-only commands (info) write nothing into the run directory, status.json included.
    if (!read_only)
      pl::start_run_status(config.output.dir, command->name, comm.rank(), comm.size());
    const int threads = pl::choose_threads(config, comm);
    omp_set_num_threads(threads);
    pl::warn_if_oversubscribed(threads, comm.rank());
    const int rc = command->run(comm, config);
    pl::finish_run_status("done");
    return rc;
  } catch (const pl::ConfigError& e) {
    if (comm.rank() == 0) spdlog::error("config: {}", e.what());
    pl::finish_run_status("failed", e.what());  // only once this run holds the directory
    return pl::kExitConfig;
  } catch (const pl::Stopped& e) {
    // All ranks agreed to stop at a safe point (SIGTERM, SIGINT or SIGUSR1).
    if (comm.rank() == 0) spdlog::warn("{}: {} (exit {})", command->name, e.what(), pl::kExitStopped);
    pl::finish_run_status("stopped", e.what());
    return pl::kExitStopped;
  } catch (const sf::cluster::PhaseError& e) {
    // All ranks agreed on this error; rank 0 reports it once.
    if (comm.rank() == 0) spdlog::error("{}", e.what());
    pl::finish_run_status("failed", e.what(), e.failed_rank());
    return pl::kExitFailed;
  } catch (const std::exception& e) {
    // Not agreed: other ranks may be waiting in a collective. Stop them all.
    spdlog::error("{}: in stage '{}': {}", command->name, pl::current_stage(), e.what());
    pl::finish_run_status("failed", e.what(), comm.rank());
    lease = {};  // the abort ends this process without destructors
    if (comm.size() > 1) comm.abort(pl::kExitFailed);
    return pl::kExitFailed;
  }
}
