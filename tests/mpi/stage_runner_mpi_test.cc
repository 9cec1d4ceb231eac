// MPI tests (1, 2 and 4 ranks) of the stage runner (runtime/stage_runner.h) on a fake
// two-stage pipeline: "sum" (an allreduce of the ranks' numbers, saved by rank 0) -> "scale"
// (sum x a config key). A straight run, a resumed one that reads back the result, a stop
// honoured after the first stage's marker and resumed from it, a changed key that redoes the
// stage that reads it and (by the fingerprint chain) the stages after it, and an error on one
// rank that fails every rank and leaves no marker. Then a stage without a checkpoint: skipped
// when the next checkpointed stage verifies, and what StageContext::reused tells; a ConfigError
// of configure() on every rank.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

#include "io/atomic_file.h"
#include "runtime/stage_runner.h"
#include "runtime/stop.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::runtime {
namespace {

using sf::testing::problems_on_any_rank;
using sf::testing::world;

int64_t read_number(const std::string& path) {
  std::ifstream in(path);
  int64_t v = -1;
  in >> v;
  return v;
}

// What the fake stages share, and what they did (per rank).
struct Fake {
  int64_t sum = 0, scaled = 0;
  int runs = 0, loads = 0, skips = 0;
  bool stop_in_sum = false;  // the last rank asks to stop while "sum" runs
  bool fail_in_scale = false;  // the last rank fails in "scale"
};

// Rank 0 writes `value` to <key>.txt among the checkpoints; the marker holds it as `key`.
StageOutputs save_number(cluster::Comm& comm, const StageContext& c, const std::string& key,
                         int64_t value) {
  if (comm.rank() != 0) return {};
  io::publish_text(c.checkpoints.path(key + ".txt"), std::to_string(value) + "\n");
  return {{key + ".txt"}, {{key, value}}};
}

class SumStage : public Stage {
 public:
  explicit SumStage(Fake& f) : f_(f) {}
  std::string name() const override { return "sum"; }
  void configure(StageOptions& options) override {
    offset_ = options.read("seed", options.config().seed);
  }
  void run(cluster::Comm& comm, const StageContext&) override {
    ++f_.runs;
    f_.sum = comm.sum(int64_t{comm.rank()} + 1) + static_cast<int64_t>(offset_);
    if (f_.stop_in_sum && comm.rank() == comm.size() - 1) set_stop_requested(true);
  }
  StageOutputs save(cluster::Comm& comm, const StageContext& c) override {
    return save_number(comm, c, "sum", f_.sum);
  }
  void load(cluster::Comm&, const StageContext&, const nlohmann::json& info) override {
    ++f_.loads;
    f_.sum = info.at("sum").get<int64_t>();
  }
  void skip(const StageContext&, const nlohmann::json& info) override {
    ++f_.skips;
    f_.sum = info.is_object() ? info.value("sum", int64_t{-1}) : -1;
  }

 private:
  Fake& f_;
  uint64_t offset_ = 0;
};

class ScaleStage : public Stage {
 public:
  explicit ScaleStage(Fake& f) : f_(f) {}
  std::string name() const override { return "scale"; }
  void configure(StageOptions& options) override {
    factor_ = options.read("threads", options.config().threads);
  }
  void run(cluster::Comm& comm, const StageContext&) override {
    ++f_.runs;
    cluster::run_local_phase(comm, "scale", [&] {
      if (f_.fail_in_scale && comm.rank() == comm.size() - 1)
        throw std::runtime_error("disk full");
      f_.scaled = f_.sum * factor_;
    });
  }
  StageOutputs save(cluster::Comm& comm, const StageContext& c) override {
    return save_number(comm, c, "scaled", f_.scaled);
  }
  void load(cluster::Comm&, const StageContext&, const nlohmann::json& info) override {
    ++f_.loads;
    f_.scaled = info.at("scaled").get<int64_t>();
  }

 private:
  Fake& f_;
  int factor_ = 1;
};

Config fake_config(const std::string& dir, int factor, int seed, bool resume) {
  Config config;
  config.output.dir = dir;
  config.seed = static_cast<uint64_t>(seed);
  config.threads = factor;
  config.resume = resume;
  config.resolved = YAML::Load("seed: " + std::to_string(seed) + "\nthreads: " +
                               std::to_string(factor) + "\n");
  return config;
}

// Runs the fake pipeline; "" or what went wrong. `*outcome`: "run" / "stopped" / "failed".
Fake run_fake(cluster::Comm& comm, const Config& config, Fake f, std::string* outcome) {
  const Checkpoints checkpoints(config.output.dir);
  StageLog log;
  StageRunner runner(comm, config, checkpoints, log, {});
  SumStage sum(f);
  ScaleStage scale(f);
  try {
    runner.run({&sum, &scale});
    *outcome = "run";
  } catch (const Stopped& e) {
    *outcome = "stopped in " + e.stage();
  } catch (const cluster::PhaseError& e) {
    *outcome = std::string("failed: ") + e.detail();
  }
  set_stop_requested(false);
  return f;
}

TEST(MpiStageRunner, RunsResumesStopsAndRedoesAlongTheChain) {
  cluster::Comm& comm = world();
  const testing::SharedTempDir dir(comm);
  const int64_t n = comm.size();
  const int64_t sum = n * (n + 1) / 2 + 10;
  std::string problem, outcome;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) problem += what + "; ";
  };

  Fake stopping;
  stopping.stop_in_sum = true;
  // A stop requested while "sum" runs: honoured after its marker, on every rank.
  Fake f = run_fake(comm, fake_config(dir.path(), 3, 10, false), stopping, &outcome);
  expect(outcome == "stopped in sum: checkpoint", "first run: " + outcome);
  expect(f.runs == 1, "first run ran " + std::to_string(f.runs) + " stage(s)");
  comm.barrier();
  expect(std::filesystem::exists(dir.file("checkpoints/sum.json")), "no sum marker");
  expect(!std::filesystem::exists(dir.file("checkpoints/scale.json")), "a scale marker");

  // --resume: "sum" is read back, "scale" runs.
  f = run_fake(comm, fake_config(dir.path(), 3, 10, true), Fake{}, &outcome);
  expect(outcome == "run", "resumed: " + outcome);
  expect(f.loads == 1 && f.runs == 1, "resumed: loads " + std::to_string(f.loads) + " runs " +
                                          std::to_string(f.runs));
  expect(f.scaled == 3 * sum, "resumed: scaled " + std::to_string(f.scaled));
  comm.barrier();
  expect(read_number(dir.file("scaled.txt")) == 3 * sum, "scaled.txt");

  // Again: the result verifies, "sum" is skipped, "scale" read back.
  f = run_fake(comm, fake_config(dir.path(), 3, 10, true), Fake{}, &outcome);
  expect(f.skips == 1 && f.loads == 1 && f.runs == 0,
         "finished: skips " + std::to_string(f.skips) + " loads " + std::to_string(f.loads));
  expect(f.sum == sum && f.scaled == 3 * sum, "finished: values");

  // A changed key of "scale" redoes "scale" only.
  f = run_fake(comm, fake_config(dir.path(), 5, 10, true), Fake{}, &outcome);
  expect(f.loads == 1 && f.runs == 1 && f.scaled == 5 * sum, "scale key changed");

  // An error on the last rank: every rank fails, the marker of "scale" stays the earlier one.
  Fake failing;
  failing.fail_in_scale = true;
  f = run_fake(comm, fake_config(dir.path(), 7, 10, true), failing, &outcome);
  expect(outcome == "failed: disk full", "failing: " + outcome);
  comm.barrier();
  const nlohmann::json info = Checkpoints(dir.path()).info("scale");
  expect(info.value("scaled", int64_t{0}) == 5 * sum, "scale marker after a failure: " + info.dump());

  // A changed key of "sum" redoes "sum" and, through the chain, "scale".
  f = run_fake(comm, fake_config(dir.path(), 7, 11, true), Fake{}, &outcome);
  expect(f.runs == 2 && f.loads == 0 && f.scaled == 7 * (sum + 1), "sum key changed");

  // Without --resume everything runs again.
  f = run_fake(comm, fake_config(dir.path(), 7, 10, false), Fake{}, &outcome);
  expect(f.runs == 2 && f.loads == 0 && f.scaled == 7 * sum, "fresh run");

  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

// A stage without a checkpoint of its own between "sum" and "scale", and a last one after
// "scale" that asks which stages are reused.
class PrepStage : public TransientStage {
 public:
  PrepStage(int& runs, bool bad_config = false) : runs_(runs), bad_config_(bad_config) {}
  std::string name() const override { return "prep"; }
  void configure(StageOptions& options) override {
    if (bad_config_) throw ConfigError(options.config().source + ": prep: no such option");
  }
  void run(cluster::Comm&, const StageContext&) override { ++runs_; }

 private:
  int& runs_;
  bool bad_config_;
};

class TailStage : public TransientStage {
 public:
  explicit TailStage(std::string& reused) : reused_(reused) {}
  std::string name() const override { return "tail"; }
  void run(cluster::Comm&, const StageContext& context) override {
    reused_.clear();
    for (const char* stage : {"sum", "prep", "scale", "nope"})
      reused_ += std::string(stage) + "=" + (context.reused(stage) ? "1 " : "0 ");
  }

 private:
  std::string& reused_;
};

TEST(MpiStageRunner, SkipsAStageWithoutCheckpointWhenTheNextOneVerifies) {
  cluster::Comm& comm = world();
  const testing::SharedTempDir dir(comm);
  std::string problem;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) problem += what + "; ";
  };
  auto run = [&](bool resume, int* prep_runs, std::string* reused, Fake* f) {
    const Config config = fake_config(dir.path(), 3, 10, resume);
    const Checkpoints checkpoints(config.output.dir);
    StageLog log;
    StageRunner runner(comm, config, checkpoints, log, {});
    SumStage sum(*f);
    PrepStage prep(*prep_runs);
    ScaleStage scale(*f);
    TailStage tail(*reused);
    runner.run({&sum, &prep, &scale, &tail});
    return runner.outcome("prep");
  };
  int prep_runs = 0;
  std::string reused;
  Fake f;
  StageOutcome prep = run(false, &prep_runs, &reused, &f);
  expect(prep == StageOutcome::kRun && prep_runs == 1 && f.runs == 2, "first run");
  expect(reused == "sum=0 prep=0 scale=0 nope=0 ", "first run: reused " + reused);

  // --resume: "scale" verifies, so "prep" (which only feeds it) is skipped; "sum" and
  // "scale" are read back; "tail" (no checkpoint, the last) runs.
  f = Fake{};
  prep = run(true, &prep_runs, &reused, &f);
  expect(prep == StageOutcome::kSkipped && prep_runs == 1, "resumed: prep not skipped");
  expect(f.loads == 2 && f.runs == 0 && f.scaled == 3 * (comm.size() * (comm.size() + 1) / 2 + 10),
         "resumed: loads " + std::to_string(f.loads) + " runs " + std::to_string(f.runs));
  expect(reused == "sum=1 prep=1 scale=1 nope=0 ", "resumed: reused " + reused);

  // A ConfigError of configure() comes out as itself on every rank (exit 2), nothing runs.
  {
    const Config config = fake_config(dir.path(), 3, 10, true);
    const Checkpoints checkpoints(config.output.dir);
    StageLog log;
    StageRunner runner(comm, config, checkpoints, log, {});
    Fake g;
    int runs = 0;
    SumStage sum(g);
    PrepStage bad(runs, /*bad_config=*/true);
    std::string what = "no error";
    try {
      runner.run({&sum, &bad});
    } catch (const ConfigError& e) {
      what = e.what();
    } catch (const std::exception& e) {
      what = std::string("not a ConfigError: ") + e.what();
    }
    expect(what.find("prep: no such option") != std::string::npos && g.runs == 0 && runs == 0,
           "bad config: " + what);
  }

  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

}  // namespace
}  // namespace sf::runtime
