// shardforge <command> CONFIG.yaml [--set key=value]...
// Run directly, or under mpirun / srun: every rank runs the same command.
#include <omp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <map>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "jobs/jobs.h"
#include "pipeline/config.h"
#include "pipeline/run_dir.h"

#ifndef SHARDFORGE_VERSION
#define SHARDFORGE_VERSION "0.0.0"
#endif

namespace {

using JobFn = std::function<int(sf::cluster::Comm&, const sf::pipeline::Config&)>;

struct Command {
  const char* name;
  const char* help;
  JobFn run;
};

const Command kCommands[] = {
    {"build", "train, build and merge one FAISS IVF index into <output.dir>/index.faiss",
     sf::jobs::build_job},
    {"eval", "recall@1/10/100 and QPS of <output.dir>/index.faiss per nprobe -> eval.json",
     sf::jobs::eval_job},
    {"info", "show the run directory: index shape, list balance, stage times, recall",
     sf::jobs::info_job},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardforge: distributed FAISS index builds over MPI ranks.\n"
               "Run directly, or under mpirun / srun (every rank runs the same command)."};
  app.set_version_flag("--version", std::string("shardforge ") + SHARDFORGE_VERSION);
  app.require_subcommand(1);
  std::string config_path;
  std::vector<std::string> overrides;
  bool verbose = false;
  std::map<std::string, CLI::App*> subs;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->add_option("config", config_path, "YAML config file")->required();
    sub->add_option("--set", overrides,
                    "override a config key: --set index.factory=IVF256,Flat "
                    "--set eval.nprobe=[1,8,32] (repeatable)");
    sub->add_flag("-v,--verbose", verbose, "log info lines from every rank, not only rank 0");
    sub->set_version_flag("--version", std::string("shardforge ") + SHARDFORGE_VERSION);
    subs[c.name] = sub;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  sf::cluster::MpiSession mpi(&argc, &argv);
  sf::cluster::Comm& comm = mpi.world();
  sf::pipeline::setup_logging(comm.rank(), comm.size(), verbose);

  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (subs[c.name]->parsed()) command = &c;

  try {
    // Every rank parses the same file, so a config error is the same on every rank.
    const sf::pipeline::Config config = sf::pipeline::load_config(config_path, overrides);
    omp_set_num_threads(sf::pipeline::choose_threads(config, comm));
    return command->run(comm, config);
  } catch (const sf::pipeline::ConfigError& e) {
    if (comm.rank() == 0) spdlog::error("config: {}", e.what());
    return 2;
  } catch (const sf::cluster::PhaseError& e) {
    // All ranks agreed on this error; rank 0 reports it once.
    if (comm.rank() == 0) spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Not agreed: other ranks may be waiting in a collective. Stop them all.
    spdlog::error("{}: {}", command->name, e.what());
    if (comm.size() > 1) comm.abort(1);
    return 1;
  }
}
