// Byte sizes in the config (runtime/config.h) and the per-rank memory budget
// (runtime/memory_budget.h).
#include "runtime/memory_budget.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "runtime/config.h"
#include "runtime/run_dir.h"
#include "pipeline/text_dedup.h"
#include "stages/batches.h"
#include "stages/build.h"
#include "stages/dedup/memory_plan.h"
#include "stages/eval.h"
#include "stages/shard_search.h"
#include "tests/test_util.h"

namespace sf::runtime {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A job file in `dir` with one input file and `resources` (a YAML value, e.g.
// "{memory_per_rank: 300MiB}"; empty: no resources key). Returns its path.
std::string write_job(const sf::testing::TempDir& dir, const std::string& resources) {
  const std::string path = dir.file("job.yaml");
  std::ofstream(path) << "input: {paths: [a.fvecs]}\noutput: {dir: out}\n"
                      << (resources.empty() ? "" : "resources: " + resources + "\n");
  return path;
}

TEST(ByteSize, ParsesUnitsAsSlurmDoes) {
  EXPECT_EQ(parse_byte_size("0").bytes, 0u);
  EXPECT_EQ(parse_byte_size("4096").bytes, 4096u);
  EXPECT_EQ(parse_byte_size("4096B").bytes, 4096u);
  EXPECT_EQ(parse_byte_size("256MiB").bytes, 256 * kMiB);
  EXPECT_EQ(parse_byte_size("256M").bytes, 256 * kMiB);  // Slurm's --mem=256M
  EXPECT_EQ(parse_byte_size("2GiB").bytes, 2048 * kMiB);
  EXPECT_EQ(parse_byte_size("1.5G").bytes, 1536 * kMiB);
  EXPECT_EQ(parse_byte_size("3 KiB").bytes, 3072u);
  EXPECT_EQ(parse_byte_size("2GB").bytes, 2000000000u);
  EXPECT_EQ(parse_byte_size("1TiB").bytes, uint64_t{1} << 40);
}

TEST(ByteSize, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "MiB", "-1", "1.5", "2 GiBs", "2gb", "1e3", "1.2.3M",
                          "99999999999999999999", "20000000000TiB"}) {
    EXPECT_THROW(parse_byte_size(bad), std::invalid_argument) << bad;
  }
  try {
    parse_byte_size("2gb");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown unit 'gb'"), std::string::npos) << e.what();
  }
}

TEST(ByteSize, FormatsTheShortestExactText) {
  EXPECT_EQ(format_byte_size({0}), "0");
  EXPECT_EQ(format_byte_size({256 * kMiB}), "256MiB");
  EXPECT_EQ(format_byte_size({1536 * kMiB}), "1536MiB");
  EXPECT_EQ(format_byte_size({uint64_t{2} << 30}), "2GiB");
  EXPECT_EQ(format_byte_size({1000}), "1000");
  for (const char* text : {"3KiB", "5TiB", "768MiB", "12345"})
    EXPECT_EQ(format_byte_size(parse_byte_size(text)), text);
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536 * kMiB), "1.50 GiB");
  EXPECT_EQ(human_bytes(300 * kMiB), "300 MiB");
}

TEST(ByteSize, IsAConfigValueThatReadsBack) {
  sf::testing::TempDir dir;
  const std::string path = write_job(dir, "{memory_per_rank: 1.5GiB}");
  const Config config = load_config(path);
  EXPECT_EQ(config.resources.memory_per_rank.bytes, 1536 * kMiB);
  EXPECT_EQ(config.resolved["resources"]["memory_per_rank"].as<std::string>(), "1536MiB");
  EXPECT_EQ(load_config(path, {"resources.memory_per_rank=4096"}).resources.memory_per_rank.bytes,
            4096u);
  try {
    load_config(path, {"resources.memory_per_rank=lots"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("resources.memory_per_rank: expected a size"),
              std::string::npos)
        << e.what();
  }
  // The default is 0: what the environment gives.
  EXPECT_EQ(load_config(write_job(dir, "")).resources.memory_per_rank.bytes, 0u);
}

TEST(MemoryBudget, FollowsSlurmThenTheNode) {
  const uint64_t node = 64 * 1024 * kMiB;
  // --mem-per-cpu=2000 with --cpus-per-task=4: 8000 MiB for the task.
  MemoryBudget b = budget_from_environment("2000", "4", "", node, 8);
  EXPECT_EQ(b.bytes, 8000 * kMiB);
  EXPECT_EQ(b.source, "SLURM_MEM_PER_CPU × 4 CPUs");
  b = budget_from_environment("2000", "", "", node, 8);  // cpus-per-task unset: 1
  EXPECT_EQ(b.bytes, 2000 * kMiB);
  // --mem=32G on a node with 4 of the job's tasks.
  b = budget_from_environment("", "2", "32768", node, 4);
  EXPECT_EQ(b.bytes, 8192 * kMiB);
  EXPECT_EQ(b.source, "SLURM_MEM_PER_NODE / 4 tasks");
  // --mem=0 (all of the node) and outside Slurm: the available memory shared by the ranks.
  b = budget_from_environment("", "", "0", node, 4);
  EXPECT_EQ(b.bytes, node / 4);
  EXPECT_EQ(b.source, "available memory / 4 ranks");
  EXPECT_EQ(budget_from_environment("", "", "", node, 0).bytes, node);
}

TEST(MemoryBudget, TheNodeHasSomeAvailableMemory) {
  const uint64_t available = available_memory();
  EXPECT_GT(available, 16 * kMiB);
  EXPECT_LT(available, uint64_t{1} << 50);
}

TEST(MemoryBudget, MessagesSayTheSizeTheSourceAndTheNeed) {
  EXPECT_EQ(format_bytes(256 * kMiB), "256 MiB");
  EXPECT_EQ(format_bytes(2048 * kMiB), "2 GiB");
  EXPECT_EQ(format_bytes(1536 * kMiB), "1536 MiB");
  EXPECT_EQ(format_bytes(kMiB / 2), "0.5 MiB");
  EXPECT_EQ(over_budget_message("index.train_size: the sample", 700 * kMiB,
                                {256 * kMiB, "resources.memory_per_rank"}, "; lower it"),
            "index.train_size: the sample needs 700 MiB per rank, more than the memory budget "
            "256 MiB per rank (resources.memory_per_rank); lower it");
}

TEST(MemoryBudget, ResolvedOnceForEveryRankAlike) {
  sf::testing::TempDir dir;
  const Config config = load_config(write_job(dir, "{memory_per_rank: 300MiB}"));
  const auto comm = cluster::make_serial_comm();
  const MemoryBudget budget = resolve_memory_budget(config, *comm);
  EXPECT_EQ(budget.bytes, 300 * kMiB);
  EXPECT_EQ(budget.source, "resources.memory_per_rank");
}

// A budget below what a rank holds when it starts fails at once, naming the key, the budget and
// the largest rank's start (resolve_memory_budget checks it on every rank alike).
TEST(MemoryBudget, BelowWhatARankHoldsAtStartIsAConfigError) {
  Config config;
  config.source = "c.yaml";
  MemoryBudget budget{kMiB, "resources.memory_per_rank"};
  budget.start_bytes = 28 * kMiB;
  try {
    check_budget_covers_start(config, budget);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "c.yaml: resources.memory_per_rank: the memory budget 1 MiB per rank "
              "(resources.memory_per_rank) is less than a rank holds before any stage starts: "
              "28 MiB (the largest rank's: the program, MPI and FAISS); raise "
              "resources.memory_per_rank");
  }
  budget.bytes = 28 * kMiB;
  EXPECT_NO_THROW(check_budget_covers_start(config, budget));
  budget.bytes = 0;  // no budget
  EXPECT_NO_THROW(check_budget_covers_start(config, budget));
  // resolve_memory_budget measures this process's start.
  sf::testing::TempDir dir;
  const auto comm = cluster::make_serial_comm();
  EXPECT_THROW(resolve_memory_budget(load_config(write_job(dir, "{memory_per_rank: 1MiB}")), *comm),
               ConfigError);
}

// run.json records the budget beside each stage's peak, and which stage went over it.
TEST(MemoryBudget, RunJsonRecordsItBesideEachStagesPeak) {
  sf::testing::TempDir temp;
  const std::string& dir = temp.path();
  const auto comm = cluster::make_serial_comm();
  StageLog within({uint64_t{1} << 40, "resources.memory_per_rank"});
  within.begin("read");
  within.end();
  write_run_json(*comm, dir, "build", 1, within, nlohmann::json::object());
  StageLog over({kMiB, "SLURM_MEM_PER_CPU × 1 CPU"});  // a process holds more than 1 MiB
  over.begin("add");
  over.end();
  write_run_json(*comm, dir, "run", 1, over, nlohmann::json::object());
  std::ifstream in(dir + "/run.json");
  const nlohmann::json run = nlohmann::json::parse(in);
  const nlohmann::json& build = run["commands"]["build"];
  EXPECT_EQ(build["memory_budget_mib"].get<double>(), 1024.0 * 1024);
  EXPECT_EQ(build["memory_budget_source"], "resources.memory_per_rank");
  EXPECT_FALSE(build["stages"][0]["over_budget"].get<bool>());
  EXPECT_LT(build["stages"][0]["peak_over_budget"].get<double>(), 0.01);
  const nlohmann::json& stage = run["commands"]["run"]["stages"][0];
  EXPECT_EQ(stage["name"], "add");
  EXPECT_TRUE(stage["over_budget"].get<bool>());
  EXPECT_GT(stage["peak_over_budget"].get<double>(), 1.0);
  // Without a budget (tests, older callers): no budget keys.
  StageLog none;
  none.begin("load");
  none.end();
  write_run_json(*comm, dir, "eval", 1, none, nlohmann::json::object());
  std::ifstream again(dir + "/run.json");
  const nlohmann::json eval = nlohmann::json::parse(again)["commands"]["eval"];
  EXPECT_FALSE(eval.contains("memory_budget_mib"));
  EXPECT_FALSE(eval["stages"][0].contains("over_budget"));
}

// Each stage's own peak, while the process's high-water mark (what /usr/bin/time -f %M and
// Slurm's MaxRSS read, through ru_maxrss) keeps the largest: no stage resets it.
TEST(StageLog, PeaksPerStageKeepTheProcesssHighWaterMark) {
#ifdef __SANITIZE_ADDRESS__
  // ASan keeps freed blocks in its quarantine and maps shadow and fake stacks of its own: the
  // resident set is not the program's, and the small stage below is not small.
  GTEST_SKIP() << "resident memory under AddressSanitizer is not the program's";
#endif
  constexpr size_t kBig = 96 * kMiB;
  StageLog log;
  log.begin("big");
  const double before = current_rss_mib();
  {
    std::vector<char> held(kBig);
    for (size_t i = 0; i < held.size(); i += 4096) held[i] = 1;  // resident, page by page
    std::this_thread::sleep_for(std::chrono::milliseconds(4 * StagePeak::kSampleMs));
    ASSERT_EQ(held[kBig - 4096], 1);
  }  // freed: a block this large is unmapped, the RSS falls back
  log.end();
  log.begin("small");
  log.end();
  const double big = log.entries()[0].peak_rss_mib, small = log.entries()[1].peak_rss_mib;
  EXPECT_GE(big, before + 90) << "the 96 MiB held in stage big";
  EXPECT_LT(small, big - 60) << "stage small held nothing: its own peak, not the big one's";
  EXPECT_GE(peak_rss_mib(), big - 1) << "VmHWM was reset";
  rusage usage{};
  ASSERT_EQ(getrusage(RUSAGE_SELF, &usage), 0);
  EXPECT_GE(static_cast<double>(usage.ru_maxrss) / 1024, big - 1)
      << "ru_maxrss (/usr/bin/time -f %M) lost the big stage's peak";
}

// What eval's exact ground truth and search plan from the budget: fewer rows or queries per
// batch, never more than configured, and nothing changed without a budget.
TEST(MemoryBudget, PlansEvalAndSearchBatches) {
  using stages::plan_exact_scan;
  const stages::ExactScanPlan none = plan_exact_scan(65536, 1000, 100, 128, 2, 0);
  EXPECT_EQ(none.rows, 65536);
  EXPECT_EQ(plan_exact_scan(65536, 1000, 100, 128, 2, 64 * 1024 * kMiB).rows, 65536);
  const stages::ExactScanPlan tight = plan_exact_scan(65536, 1000, 100, 128, 2, 64 * kMiB);
  EXPECT_LT(tight.rows, 65536);
  EXPECT_GE(tight.rows, 1024);
  // Two copies of a batch and the fixed part within half the budget.
  EXPECT_LE(tight.fixed_bytes + static_cast<uint64_t>(tight.rows) * 2 * 128 * 4, 32 * kMiB);
  EXPECT_EQ(tight.need_bytes, tight.fixed_bytes + 1024u * 2 * 128 * 4);
  EXPECT_EQ(plan_exact_scan(65536, 1000, 100, 128, 2, 8 * kMiB).rows, 1024);  // the least

  EXPECT_EQ(stages::budget_batch_queries(4096, 128, 10, 8, 2, 0), 4096);
  EXPECT_EQ(stages::budget_batch_queries(4096, 128, 10, 8, 2, 64 * 1024 * kMiB), 4096);
  const int64_t few = stages::budget_batch_queries(4096, 128, 10, 8, 2, kMiB);
  EXPECT_LT(few, 4096);
  EXPECT_GE(few, 1);
  EXPECT_EQ(stages::budget_batch_queries(4096, 128, 10, 8, 2, 1), 1);
}

// build's add: input.batch_rows and output.piece_rows as configured without a budget or where
// they fit; lowered to whole blocks within half the budget; the least is one block each.
TEST(MemoryBudget, PlansAddBatchesAndPieces) {
  using stages::plan_add;
  using stages::kBlockRows;
  // 128 dims, Flat codes (512 bytes), nlist 1024, a 0.5 MiB trained index, 1 thread.
  const uint64_t index_bytes = kMiB / 2;
  const stages::AddPlan none = plan_add(16384, 65536, 128, 512, 1024, index_bytes, 1, 0);
  EXPECT_EQ(none.batch_rows, 16384);
  EXPECT_EQ(none.piece_rows, 65536);
  const stages::AddPlan big = plan_add(16384, 65536, 128, 512, 1024, index_bytes, 1, 1024 * kMiB);
  EXPECT_EQ(big.batch_rows, 16384);
  EXPECT_EQ(big.piece_rows, 65536);
  EXPECT_EQ(plan_add(1000, 1000, 128, 512, 1024, index_bytes, 1, 1024 * kMiB).batch_rows, 1000);
  const stages::AddPlan tight = plan_add(16384, 65536, 128, 512, 1024, index_bytes, 1, 64 * kMiB);
  EXPECT_LT(tight.batch_rows, 16384);
  EXPECT_LT(tight.piece_rows, 65536);
  EXPECT_EQ(tight.batch_rows % kBlockRows, 0);
  EXPECT_EQ(tight.piece_rows % kBlockRows, 0);
  EXPECT_LE(tight.fixed_bytes + static_cast<uint64_t>(tight.batch_rows) * tight.batch_row_bytes +
                static_cast<uint64_t>(tight.piece_rows) * tight.piece_row_bytes,
            32 * kMiB);
  EXPECT_EQ(tight.need_bytes,
            tight.fixed_bytes + kBlockRows * (tight.batch_row_bytes + tight.piece_row_bytes));
  // More threads, more block buffers: a larger fixed part, fewer rows.
  const stages::AddPlan threads = plan_add(16384, 65536, 128, 512, 1024, index_bytes, 4, 64 * kMiB);
  EXPECT_GT(threads.fixed_bytes, tight.fixed_bytes);
  EXPECT_LE(threads.piece_rows, tight.piece_rows);
  const stages::AddPlan least = plan_add(16384, 65536, 128, 512, 1024, index_bytes, 1, 4 * kMiB);
  EXPECT_EQ(least.batch_rows, kBlockRows);
  EXPECT_EQ(least.piece_rows, kBlockRows);
  EXPECT_GT(least.need_bytes, 4 * kMiB);  // the add stage fails before it starts
}

// dedup: what each stage holds grows with the records, the signature width and the shingle
// sets; the meter counts a growing corpus as it grows; the check names the stage and the keys.
TEST(MemoryBudget, PlansDedupFromTheRanksShare) {
  namespace dd = stages::dedup;
  dd::DedupShare share;
  share.docs = 100000;
  share.slots = 90000;
  const dd::DedupNeeds exact_only = dd::dedup_needs(share, 0, false, false);
  EXPECT_EQ(exact_only.near, 0u);
  EXPECT_GT(exact_only.exact, exact_only.sketch);
  const dd::DedupNeeds near = dd::dedup_needs(share, 128, false, false);
  // The signatures (90000 x 128 x 4 bytes) held, and copied for dedup.keep other than first.
  EXPECT_GE(near.sketch, 90000u * 128 * 4);
  EXPECT_GE(near.near, 90000u * 128 * 4);
  EXPECT_GE(dd::dedup_needs(share, 128, false, true).near, near.near + 90000u * 128 * 4);
  EXPECT_GT(dd::dedup_needs(share, 256, false, false).near, near.near);
  share.shingle_bytes = 50 * kMiB;
  EXPECT_EQ(dd::dedup_needs(share, 128, false, false).near, near.near);  // not kept
  EXPECT_GE(dd::dedup_needs(share, 128, true, false).near, near.near + 50 * kMiB);
  dd::DedupShare half = share;
  half.docs /= 2;
  half.slots /= 2;
  half.shingle_bytes /= 2;
  EXPECT_LT(dd::dedup_needs(half, 128, true, false).near,
            dd::dedup_needs(share, 128, true, false).near);

  dd::LocalCorpus corpus;
  dd::ShareMeter meter;
  for (int i = 0; i < 3; ++i) {
    corpus.keep_score.push_back(0);
    corpus.ids.push_back("\"doc\"");
    corpus.shingle_sets.push_back({1, 2, 3});
    corpus.slots = i + 1;
    meter.update(corpus);
  }
  EXPECT_EQ(meter.share().docs, 3);
  EXPECT_EQ(meter.share().slots, 3);
  EXPECT_EQ(meter.share().id_bytes, 15u);
  EXPECT_EQ(meter.share().shingle_bytes, 3u * 3 * 8);

  Config config;
  config.source = "c.yaml";
  const auto comm = cluster::make_serial_comm();
  const MemoryBudget budget{128 * kMiB, "resources.memory_per_rank"};
  share.shingle_bytes = 0;
  EXPECT_NO_THROW(pipeline::check_dedup_budget(*comm, config, share, 128, false, false, false, budget));
  share.docs = share.slots = 1000000;
  try {
    pipeline::check_dedup_budget(*comm, config, share, 128, false, false, true, budget);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("c.yaml: dedup near (per band"), std::string::npos) << m;
    EXPECT_NE(m.find("1000000 record(s) (at least"), std::string::npos) << m;
    EXPECT_NE(m.find("x 128 values (dedup.num_perm)"), std::string::npos) << m;
    EXPECT_NE(m.find("more than the memory budget 128 MiB per rank"), std::string::npos) << m;
    EXPECT_NE(m.find("run on more ranks, lower dedup.num_perm, or raise "
                     "resources.memory_per_rank"),
              std::string::npos)
        << m;
  }
  EXPECT_NO_THROW(pipeline::check_dedup_budget(*comm, config, share, 128, false, false, false,
                                               {0, "none"}));
}

}  // namespace
}  // namespace sf::runtime
