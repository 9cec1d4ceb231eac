// The memory budget on every rank (issue 15): resolved alike, and a training sample that cannot
// fit fails before any work with the same ConfigError on every rank, whatever the rank count; so
// do the add's plan and dedup's check.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "io/vector_file.h"
#include "pipeline/index_build.h"
#include "pipeline/text_dedup.h"
#include "runtime/config.h"
#include "runtime/memory_budget.h"
#include "stages/ivf_index.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

TEST(MemoryBudgetMpi, ResolvedAlikeAndTheTrainingSampleCheckedOnEveryRank) {
  cluster::Comm& comm = testing::world();
  testing::SharedTempDir dir(comm);
  const int64_t rows = 50000;
  const int dim = 32;
  std::vector<float> data(static_cast<size_t>(rows) * dim);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 97) / 97.0f;
  testing::write_fvecs_on_rank0(comm, dir.file("base.fvecs"), data, rows, dim);
  const std::string config_path = dir.file("c.yaml");
  cluster::run_local_phase(comm, "test: write config", [&] {
    if (comm.rank() == 0)
      std::ofstream(config_path) << "input: {paths: [" << dir.file("base.fvecs")
                                 << "]}\noutput: {dir: out}\nresources: {memory_per_rank: 1GiB}\n";
  });
  // 1 GiB: resolve_memory_budget refuses a budget below what the process holds already, and
  // this test binary runs every MPI test in one process (under ASan at 4 ranks, 313 MiB by here).
  const runtime::Config config = runtime::load_config(config_path);
  const runtime::MemoryBudget budget = runtime::resolve_memory_budget(config, comm);
  EXPECT_EQ(budget.bytes, 1024 * kMiB);

  io::VectorCorpus corpus({dir.file("base.fvecs")}, io::VectorFormat::kFvecs);
  stages::TrainOptions options;
  options.factory = "IVF16,Flat";
  // 256 x 16 rows: a few MiB, within 1 GiB.
  EXPECT_NO_THROW(pipeline::check_train_budget(comm, config, corpus, options, budget));
  // The whole corpus as the sample in 8 MiB: every rank throws the same message.
  options.train_size = rows;
  const runtime::MemoryBudget small{8 * kMiB, "resources.memory_per_rank"};
  std::string message;
  try {
    pipeline::check_train_budget(comm, config, corpus, options, small);
  } catch (const runtime::ConfigError& e) {
    message = e.what();
  }
  const std::vector<std::string> all = testing::gather_strings(comm, message);
  if (comm.rank() == 0) {
    for (const std::string& m : all) EXPECT_EQ(m, all[0]);
    EXPECT_NE(all[0].find("index.train_size: the training sample of 50000 rows x 32 dims"),
              std::string::npos)
        << all[0];
    EXPECT_NE(all[0].find("more than the memory budget 8 MiB per rank (resources.memory_per_rank)"),
              std::string::npos)
        << all[0];
  }
  // No budget (bytes 0): nothing is checked.
  EXPECT_NO_THROW(pipeline::check_train_budget(comm, config, corpus, options, {}));
}

// The add's plan and dedup's check: alike on every rank, whatever each rank's own share.
TEST(MemoryBudgetMpi, AddAndDedupPlansAgreeOnEveryRank) {
  cluster::Comm& comm = testing::world();
  runtime::Config config;
  config.source = "c.yaml";
  const auto index = stages::make_ivf_index(64, "IVF16,Flat", false);
  const runtime::MemoryBudget roomy{256 * kMiB, "resources.memory_per_rank"};
  const stages::AddPlan plan = pipeline::plan_add_from_budget(comm, config, *index, roomy);
  EXPECT_EQ(plan.batch_rows, config.input.batch_rows);
  EXPECT_EQ(plan.piece_rows, config.output.piece_rows);
  const auto batches = testing::gather_strings(comm, std::to_string(plan.batch_rows));
  if (comm.rank() == 0) {
    for (const std::string& b : batches) EXPECT_EQ(b, batches[0]);
  }
  std::string message;
  try {
    pipeline::plan_add_from_budget(comm, config, *index, {kMiB / 4, "resources.memory_per_rank"});
  } catch (const runtime::ConfigError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("input.batch_rows, output.piece_rows"), std::string::npos) << message;

  // Rank r holds (r + 1) x 100000 records: every rank names the largest rank's.
  stages::dedup::DedupShare share;
  share.docs = share.slots = (comm.rank() + 1) * int64_t{100000};
  message.clear();
  try {
    pipeline::check_dedup_budget(comm, config, share, 128, false, false, false,
                                 {32 * kMiB, "resources.memory_per_rank"});
  } catch (const runtime::ConfigError& e) {
    message = e.what();
  }
  const std::vector<std::string> all = testing::gather_strings(comm, message);
  if (comm.rank() == 0) {
    for (const std::string& m : all) EXPECT_EQ(m, all[0]);
    EXPECT_NE(all[0].find(std::to_string(comm.size() * 100000) + " record(s)"), std::string::npos)
        << all[0];
  }
}

}  // namespace
}  // namespace sf
