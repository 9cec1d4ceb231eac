// The memory each rank may use (resources.memory_per_rank), which the stages plan their batch
// and buffer sizes from: the configured value, else what Slurm gives the task, else the node's
// available memory shared by the ranks on the node.
#pragma once

#include <cstdint>
#include <string>

#include "cluster/comm.h"
#include "runtime/config.h"

namespace sf::runtime {

struct MemoryBudget {
  uint64_t bytes = 0;
  // Where it came from, for the log and run.json: "resources.memory_per_rank",
  // "SLURM_MEM_PER_CPU × 4 CPUs", "SLURM_MEM_PER_NODE / 2 tasks", "MemAvailable / 2 ranks", ...
  std::string source;
  // What the largest rank held when the budget was resolved (its resident set: the program, MPI,
  // FAISS), in bytes; 0 when unknown. Checked once against the budget
  // (check_budget_covers_start); the stages compare their own needs with the whole budget (their
  // estimates are upper bounds, and this is about 30 MiB).
  uint64_t start_bytes = 0;
};

// What the environment gives one rank, as memory_budget() reads it; parameters for tests.
// `mem_per_cpu_mib`, `cpus_per_task`, `mem_per_node_mib`: Slurm's variables (empty when
// unset); `available`: the node's available memory in bytes (MemAvailable, at most the cgroup's
// limit); `ranks_on_node` >= 1.
MemoryBudget budget_from_environment(const std::string& mem_per_cpu_mib,
                                     const std::string& cpus_per_task,
                                     const std::string& mem_per_node_mib, uint64_t available,
                                     int ranks_on_node);

// The node's available memory in bytes: /proc/meminfo's MemAvailable, at most what the
// process's cgroup (v2 memory.max - memory.current) still allows; 0 when unknown.
uint64_t available_memory();

// Local: resources.memory_per_rank when set, else budget_from_environment() with this
// process's environment and comm.local_size() ranks on the node.
MemoryBudget memory_budget(const Config& config, const cluster::Comm& comm);

// Collective: the budget every rank of a command plans from, resolved once when it starts:
// memory_budget() of every rank, the smallest (so that plans made from it agree), and the
// largest rank's resident set now (start_bytes). Rank 0 logs it with its source: "memory
// budget 256 MiB per rank (resources.memory_per_rank)". Throws ConfigError on every rank alike
// (check_budget_covers_start) when the budget is less than what a rank already holds.
MemoryBudget resolve_memory_budget(const Config& config, cluster::Comm& comm);

// Local: throws ConfigError("<file>: resources.memory_per_rank: ...") naming the budget and
// `budget.start_bytes` when the budget is below what a rank holds before any stage starts.
void check_budget_covers_start(const Config& config, const MemoryBudget& budget);

// "256 MiB", "1.5 GiB": a size for messages.
std::string format_bytes(uint64_t bytes);

// What a stage needs that exceeds the budget, for its error: "<what> needs 700 MiB per rank,
// more than the memory budget 256 MiB per rank (<source>)<hint>". `hint` names what to change,
// e.g. "; lower index.train_size or raise resources.memory_per_rank".
std::string over_budget_message(const std::string& what, uint64_t need, const MemoryBudget& budget,
                                const std::string& hint);

}  // namespace sf::runtime
