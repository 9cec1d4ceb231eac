// The job configuration: one YAML file plus `--set key=value` overrides (dotted keys, YAML
// values). Every key is declared in the schema; an unknown key, a wrong type or a bad value is
// a ConfigError naming the key and the file. No MPI here: every rank parses the same file.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace sf::pipeline {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct InputConfig {
  std::vector<std::string> paths;  // required, non-empty
  std::string format = "auto";     // auto|hdf5|fvecs|bvecs|npy|idx
  std::string dataset = "train";   // HDF5 dataset holding the corpus
  int64_t batch_rows = 16384;      // rows read and added per batch
};

struct IndexConfig {
  std::string factory;            // FAISS factory string (required by build); an IndexIVF
  std::string metric = "l2";      // l2|ip
  int64_t train_size = 0;         // k-means sample rows; 0 = min(rows, 256 * nlist)
  int kmeans_iterations = 10;     // as FAISS IndexIVF (Level1Quantizer cp.niter)
  int64_t codebook_sample = 65536;  // rows gathered to train PQ/SQ/OPQ/PCA; bounded
};

struct OutputConfig {
  std::string dir;  // required
  // Rows per checkpointed piece of the add stage (rounded up to a multiple of 1024): a run
  // killed while adding loses at most the piece each rank was adding.
  int64_t piece_rows = 65536;
};

struct EvalConfig {
  std::string queries;               // vector file, or ann-benchmarks HDF5 (`test`, `neighbors`)
  std::string queries_dataset = "test";
  std::string ground_truth;          // optional: ivecs/npy/HDF5; else HDF5 `neighbors` or exact
  int k = 10;
  std::vector<int> nprobe = {1, 8, 32};
  int64_t max_queries = 0;           // 0 = all
};

// Defaults for `shardforge submit` (its flags win). Empty strings and 0 counts are left out of
// the job script, so Slurm's own defaults apply.
struct SlurmConfig {
  std::string job_name;  // "" = shardforge-<command>
  int nodes = 1;
  int ntasks = 0;           // total tasks (MPI ranks); 0 = not set
  int ntasks_per_node = 0;  // 0 = not set; 1 when ntasks is not set either
  int cpus_per_task = 1;    // also the job's OMP_NUM_THREADS
  std::string time;         // Slurm time limit, e.g. "02:00:00"; "" = the partition's default
  std::string partition;    // "" = the cluster's default partition
  std::string account;      // "" = the user's default account
};

struct Config {
  std::string source;  // path of the YAML file, for messages
  InputConfig input;
  IndexConfig index;
  OutputConfig output;
  EvalConfig eval;
  SlurmConfig slurm;
  uint64_t seed = 1234;
  int threads = 0;  // OpenMP threads per rank; 0 = cores on this node / ranks on this node
  YAML::Node resolved;  // the effective config (file + overrides), as written to the run dir
  // Not a key: set by the command line (--resume, or a requeued Slurm job). Stages whose
  // completion markers verify are skipped (pipeline/checkpoint.h).
  bool resume = false;
};

// Parses `path`, applies `overrides` ("a.b=value", value parsed as YAML) in order, validates.
// Throws ConfigError("<file>: <key>: <what is wrong>").
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Keys that the schema lets be empty but a command needs (e.g. build: index.factory).
// Throws ConfigError("<file>: <key> is required") for the first one that is empty.
void require(const Config& config, std::initializer_list<std::string_view> keys);

// The effective configuration as YAML text (all keys, defaults filled in).
std::string to_yaml(const Config& config);

}  // namespace sf::pipeline
