#include "runtime/memory_budget.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/run_dir.h"  // current_rss_mib

namespace sf::runtime {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A positive decimal integer, or 0 (unset, malformed, or 0: Slurm's "all of the node's memory").
uint64_t positive(const std::string& text) {
  if (text.empty()) return 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? value : 0;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The first integer in `path` ("max" or missing: 0).
uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word)) return 0;
  return positive(word);
}

}  // namespace

MemoryBudget budget_from_environment(const std::string& mem_per_cpu_mib,
                                     const std::string& cpus_per_task,
                                     const std::string& mem_per_node_mib, uint64_t available,
                                     int ranks_on_node) {
  const int ranks = std::max(1, ranks_on_node);
  if (const uint64_t per_cpu = positive(mem_per_cpu_mib); per_cpu > 0) {
    const uint64_t cpus = std::max<uint64_t>(1, positive(cpus_per_task));
    return {per_cpu * kMiB * cpus,
            "SLURM_MEM_PER_CPU × " + std::to_string(cpus) + (cpus == 1 ? " CPU" : " CPUs")};
  }
  if (const uint64_t per_node = positive(mem_per_node_mib); per_node > 0)
    return {per_node * kMiB / static_cast<uint64_t>(ranks),
            "SLURM_MEM_PER_NODE / " + std::to_string(ranks) + (ranks == 1 ? " task" : " tasks")};
  return {available / static_cast<uint64_t>(ranks),
          "available memory / " + std::to_string(ranks) + (ranks == 1 ? " rank" : " ranks")};
}

uint64_t available_memory() {
  uint64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string name;
    uint64_t kib = 0;
    if (fields >> name >> kib && name == "MemAvailable:") available = kib * 1024;
  }
  // cgroup v2: the process's group ("0::/path") and its limit.
  std::ifstream group("/proc/self/cgroup");
  for (std::string line; std::getline(group, line);) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const uint64_t max = read_number(dir + "/memory.max");
    if (max > 0) {
      const uint64_t used = read_number(dir + "/memory.current");
      const uint64_t left = max > used ? max - used : 0;
      available = available > 0 ? std::min(available, left) : left;
    }
  }
  return available;
}

MemoryBudget memory_budget(const Config& config, const cluster::Comm& comm) {
  if (config.resources.memory_per_rank.bytes > 0)
    return {config.resources.memory_per_rank.bytes, "resources.memory_per_rank"};
  return budget_from_environment(env("SLURM_MEM_PER_CPU"), env("SLURM_CPUS_PER_TASK"),
                                 env("SLURM_MEM_PER_NODE"), available_memory(),
                                 comm.local_size());
}

MemoryBudget resolve_memory_budget(const Config& config, cluster::Comm& comm) {
  MemoryBudget budget = memory_budget(config, comm);
  const int64_t mine = static_cast<int64_t>(budget.bytes);
  const int64_t smallest = comm.min(mine);
  if (smallest != mine) budget.source = "the smallest rank's";
  budget.bytes = static_cast<uint64_t>(smallest);
  budget.start_bytes =
      static_cast<uint64_t>(comm.max(current_rss_mib() * static_cast<double>(kMiB)));
  if (comm.rank() == 0)
    spdlog::info("memory budget {} per rank ({})", format_bytes(budget.bytes), budget.source);
  check_budget_covers_start(config, budget);  // the same numbers on every rank
  return budget;
}

void check_budget_covers_start(const Config& config, const MemoryBudget& budget) {
  if (budget.bytes == 0 || budget.start_bytes <= budget.bytes) return;
  throw ConfigError(config.source + ": resources.memory_per_rank: the memory budget " +
                    format_bytes(budget.bytes) + " per rank (" + budget.source +
                    ") is less than a rank holds before any stage starts: " +
                    format_bytes(budget.start_bytes) +
                    " (the largest rank's: the program, MPI and FAISS); raise "
                    "resources.memory_per_rank");
}

std::string format_bytes(uint64_t bytes) {
  char text[32];
  const double gib = static_cast<double>(bytes) / static_cast<double>(kMiB << 10);
  if (bytes >= (kMiB << 10) && bytes % (kMiB << 10) == 0)
    std::snprintf(text, sizeof(text), "%.0f GiB", gib);
  else if (bytes >= (kMiB << 10) * 10)
    std::snprintf(text, sizeof(text), "%.1f GiB", gib);
  else if (bytes >= kMiB)
    std::snprintf(text, sizeof(text), "%.0f MiB", static_cast<double>(bytes) / kMiB);
  else
    std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return text;
}

std::string over_budget_message(const std::string& what, uint64_t need, const MemoryBudget& budget,
                                const std::string& hint) {
  return what + " needs " + format_bytes(need) + " per rank, more than the memory budget " +
         format_bytes(budget.bytes) + " per rank (" + budget.source + ")" + hint;
}

}  // namespace sf::runtime
