// Byte sizes in the config (runtime/config.h) and the per-rank memory budget
// (runtime/memory_budget.h).
#include "runtime/memory_budget.h"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "runtime/config.h"
#include "tests/test_util.h"

namespace sf::runtime {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

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
  const std::string path = dir.file("job.yaml");
  std::ofstream(path) << "input: {paths: [a.fvecs]}\noutput: {dir: out}\n"
                         "resources: {memory_per_rank: 1.5GiB}\n";
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
  std::ofstream(path) << "input: {paths: [a.fvecs]}\noutput: {dir: out}\n";
  EXPECT_EQ(load_config(path).resources.memory_per_rank.bytes, 0u);
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

}  // namespace
}  // namespace sf::runtime
