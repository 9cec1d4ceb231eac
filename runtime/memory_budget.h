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

}  // namespace sf::runtime
