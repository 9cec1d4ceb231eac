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

namespace sf::runtime {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A size in bytes, written in YAML as an integer or with a unit: `512MiB`, `2GiB`, `1.5G`.
// K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024 (as Slurm's --mem), KB/MB/GB/TB powers of
// 1000, B or none bytes.
struct ByteSize {
  uint64_t bytes = 0;
  friend bool operator==(ByteSize a, ByteSize b) { return a.bytes == b.bytes; }
};
// Throws std::invalid_argument naming what is wrong (not a number, unknown unit, negative,
// past 2^64).
ByteSize parse_byte_size(std::string_view text);
// The shortest exact text: "512MiB", "2GiB", "1000" (bytes when no binary unit divides).
std::string format_byte_size(ByteSize size);
// "1.5 GiB", "300 MiB", "12 KiB": a size for messages (rounded to 3 significant digits).
std::string human_bytes(uint64_t bytes);

struct InputConfig {
  // Required, non-empty: files, directories and glob patterns as written; load_config
  // replaces them with the files they name (io/input_paths.h), in reading order.
  std::vector<std::string> paths;
  std::vector<std::string> glob;  // a directory's files must match; empty: input.format's
  std::string format = "auto";     // auto|hdf5|fvecs|bvecs|npy|idx; text (dedup): jsonl|fortune
  std::string dataset = "train";   // HDF5 dataset holding the corpus
  int64_t batch_rows = 16384;      // rows read and added per batch
  // Text corpora (dedup).
  std::string text_field = "text";  // JSONL field holding the text
  std::string id_field = "id";      // JSONL field naming the document; absent: its global row
  bool strict = false;              // bad input (malformed line, ...) is an error, not counted
  int64_t max_record_bytes = 16 << 20;  // longer records are bad input (too_long)
  // What tells resume that an input file is unchanged: metadata (path, size, mtime, ctime,
  // inode) | content (also the XXH3 of its bytes: rank 0 reads every input once per command)
  std::string verify = "metadata";
};

// Deduplication (`shardforge dedup`).
struct DedupConfig {
  int ngram = 5;                // word n-gram shingles
  int num_perm = 112;           // MinHash permutations (all estimate Jaccard; bands x rows banded)
  int bands = 14;               // LSH bands x rows <= num_perm; both 0: chosen from threshold
  int rows = 8;
  double threshold = 0.8;       // Jaccard at or above which two documents are near-duplicates
  std::string verify = "signature";  // signature (MinHash estimate) | exact (shingle sets)
  // components: a near cluster is a connected component of verified pairs; star: members
  // below the threshold to the component's representative stay kept (no chaining)
  std::string clusters = "components";
  std::string keep = "first";   // first | longest | field:<name> (largest numeric value)
  int64_t seed = 1;             // MinHash permutations, as datasketch's MinHash(seed=...)
  bool near = true;             // false: exact dedup only
  bool unicode = true;          // NFKC + case folding of non-ASCII text
  std::string punctuation = "remove";  // remove | space | keep
  bool fold_digits = false;     // every digit becomes 0
  bool write_pairs = false;     // dedup writes pairs.jsonl: every duplicate pair it verified
};

// `shardforge run`: which stages run after reading (embedding always runs), and the options
// of the embedding and semantic dedup stages.
struct RunConfig {
  bool dedup = true;     // exact + near dedup (dedup.*) before embedding
  bool semdedup = true;  // semantic dedup inside the inverted lists (semdedup.*)
  bool index = true;     // add + merge -> index.faiss (false: train for semdedup only)
  bool eval = false;     // recall of index.faiss for a sample of its own documents (eval.*)
  bool write_kept = false;  // kept/ as dedup writes it: the documents exact + near dedup kept
};

struct EmbedConfig {
  std::string method = "hashed";  // hashed | precomputed
  int dim = 0;                    // 0: the method's own (hashed: 256; precomputed: the data's)
  int64_t seed = 0;               // hashed: feature hashing seed
  std::string vectors;            // precomputed: HDF5 / .npy / fvecs file, one row per document
  std::string vectors_dataset = "embeddings";  // its HDF5 dataset
  std::string vectors_field;      // precomputed: JSONL field holding the vector instead
  int64_t batch = 1024;           // documents per embed() call
};

struct SemDedupConfig {
  double eps = 0.05;  // duplicates: cosine >= 1 - eps inside one inverted list
  std::vector<double> report_eps = {0.01, 0.02, 0.05, 0.1, 0.2};  // counted in run.json only
};

struct IndexConfig {
  std::string factory;            // FAISS factory string (required by build); an IndexIVF;
                                  // "auto": chosen by the tune stage (stages/autotune.h)
  std::string metric = "l2";      // l2|ip
  int64_t train_size = 0;         // k-means sample rows; 0 = min(rows, 256 * nlist)
  int kmeans_iterations = 10;     // as FAISS IndexIVF (Level1Quantizer cp.niter)
  int64_t codebook_sample = 65536;  // rows gathered to train PQ/SQ/OPQ/PCA; bounded
  // factory "auto": the finished index's size limit (0: none), the recall@eval.k it must reach,
  // and the tuning sample (database rows, held-out queries).
  ByteSize memory_budget;
  double target_recall = 0.9;
  int64_t tune_rows = 65536;
  int64_t tune_queries = 1000;
};

struct OutputConfig {
  std::string dir;  // required
  // Rows per checkpointed piece of the add stage (rounded up to a multiple of 1024): a run
  // killed while adding loses at most the piece each rank was adding.
  int64_t piece_rows = 65536;
  // kept/ (dedup, run.write_kept): numbered shards, pipeline/kept_shards.h.
  std::string compression = "zstd";  // zstd | gzip | none
  ByteSize max_file_bytes{uint64_t{1} << 30};  // uncompressed bytes per kept/ shard
  // index.faiss's layout: "memory" (FAISS's ArrayInvertedLists, one file) or "ondisk"
  // (OnDiskInvertedLists: index.faiss + index.ivfdata, which FAISS maps instead of reading).
  std::string layout = "memory";
};

struct EvalConfig {
  std::string queries;               // vector file, or ann-benchmarks HDF5 (`test`, `neighbors`)
  std::string queries_dataset = "test";
  std::string ground_truth;          // optional: ivecs/npy/HDF5; else HDF5 `neighbors` or exact
  int k = 10;
  std::vector<int> nprobe = {1, 8, 32};
  int64_t max_queries = 0;           // 0 = all
  double target_recall = 0;          // recall@k of "recommended"; 0: index.target_recall
};

// Workload-aware partitioning and the sharded layout (stages/partition.h). Used by `build`
// when shards > 0.
struct PartitionConfig {
  std::string workload;                  // query sample (vector file); "" = balance counts
  std::string workload_dataset = "test";  // HDF5 dataset of the workload
  std::string weights;                   // optional: one weight per workload query (1 column)
  std::string weights_dataset = "weights";  // HDF5 dataset of the weights
  int shards = 0;                        // 0 = no sharded layout
  int nprobe = 8;                        // nprobe of the cost model (access frequency)
  int max_nlist = 0;                     // nlist after re-sizing; 0 = the factory's nlist
  int tiers = 4;                         // access-density tiers re-sized (1 = lists kept)
  int replicate_hot = 0;                 // the N hottest lists get a second shard
  bool colocate = true;                  // with a workload: lists probed together share a shard
  double colocate_slack = 0.05;          // ... for a shard cost up to (1 + slack) x the mean
  std::vector<double> scan_cost;         // [a, b] seconds: fixes lambda(s) = a + b s; [] = calibrate
};

// `shardforge search`: batched distributed search over the sharded layout.
struct SearchConfig {
  std::string queries;                   // vector file, or ann-benchmarks HDF5 (`test`)
  std::string queries_dataset = "test";
  int k = 10;
  int nprobe = 0;                        // 0: the run's recommended (pipeline::default_nprobe)
  int64_t max_queries = 0;               // 0 = all
  int64_t batch_queries = 4096;          // queries per rank per round
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

// What the job may use per rank.
struct ResourcesConfig {
  // 0: what Slurm gives the task, else the node's available memory / the ranks on the node
  // (runtime/memory_budget.h).
  ByteSize memory_per_rank;
};

struct Config {
  std::string source;  // path of the YAML file, for messages
  InputConfig input;
  IndexConfig index;
  OutputConfig output;
  EvalConfig eval;
  PartitionConfig partition;
  SearchConfig search;
  SlurmConfig slurm;
  DedupConfig dedup;
  RunConfig run;
  EmbedConfig embed;
  SemDedupConfig semdedup;
  ResourcesConfig resources;
  uint64_t seed = 1234;
  int threads = 0;  // OpenMP threads per rank; 0 = cores on this node / ranks on this node
  YAML::Node resolved;  // the effective config (file + overrides), as written to the run dir
  // Not a key: set by the command line (--resume, or a requeued Slurm job). Stages whose
  // completion markers verify are skipped (runtime/checkpoint.h).
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

// The configuration reference, docs/configuration.md: every schema key with its type, allowed
// values, default and meaning, as markdown. `build/tools/config_reference` prints it; a unit
// test fails when docs/configuration.md differs. Throws std::logic_error for a schema row
// without a description.
std::string config_reference_markdown();

// The "did you mean" of config keys and of the command line: the candidate closest to `word`
// (edit distance with transpositions) within distance 2, or "" when none is that close.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace sf::runtime
