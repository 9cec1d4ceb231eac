// The config schema: one row per key, typed and validated (runtime/config_schema.h). Loading
// (config_load.cc), the effective YAML (config_yaml.cc) and docs/configuration.md
// (config_reference.cc) all follow these rows.
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config_schema.h"

namespace sf::runtime::detail {
namespace {

// To add a section, add fields to the structs in config.h and rows to schema(); the value type
// comes from the bound field, so no other code changes.

Rule any() { return {}; }
Rule required() {
  Rule rule;
  rule.required = true;
  return rule;
}
Rule at_least(int64_t min) {
  Rule rule;
  rule.min = min;
  return rule;
}
Rule between(int64_t min, int64_t max) {
  Rule rule;
  rule.min = min;
  rule.max = max;
  return rule;
}
Rule in_range(double low, double high) {
  Rule rule;
  rule.low = low;
  rule.high = high;
  return rule;
}
// A list of exactly `length` numbers in [low, high].
Rule numbers_in_range(size_t length, double low, double high) {
  Rule rule = in_range(low, high);
  rule.length = length;
  return rule;
}
Rule one_of(std::initializer_list<std::string_view> choices) {
  Rule rule;
  rule.choices = choices;
  return rule;
}

}  // namespace

// Order here is the order of to_yaml's output and of docs/configuration.md. Defaults are the
// struct initialisers in config.h.
const std::vector<Field>& schema() {
  static const std::vector<Field> kSchema = {
      {"input.paths", bind<&Config::input, &InputConfig::paths>, required(),
       "the files forming one corpus; global row ids run across them in order. Vector files "
       "(`build`) or text files (`dedup`, `run`): see "
       "[file formats](run-directory.md#input-formats). An entry may be a file, a directory "
       "(every file below it matching `input.glob`, recursively) or a glob pattern "
       "(`data/**/*.jsonl.zst`: `*`, `?`, `[...]`, `**` for any number of directories); the "
       "files of each directory or pattern are read in byte order of their paths, a file named "
       "twice once; a directory or pattern that matches no file is an error (exit 2). See "
       "[input files](run-directory.md#input-files)"},
      {"input.glob", bind<&Config::input, &InputConfig::glob>, any(),
       "the file-name patterns a directory's files must match (`!pattern` excludes). Empty: "
       "the formats `input.format` names (`auto`: all of them): `*.jsonl`, `*.jsonl.gz`, "
       "`*.jsonl.zst`, `*.jsonl.zstd`, `*.ndjson`; `*.h5`, `*.hdf5`, `*.fvecs`, `*.bvecs`, "
       "`*.ivecs`, `*.npy`, `*.idx`, `*-ubyte`, `*-ubyte.gz`, `*.idx.gz`; `fortune`: `*`, "
       "`!*.dat`, `!*.u8`"},
      {"input.format", bind<&Config::input, &InputConfig::format>,
       one_of({"auto", "hdf5", "fvecs", "bvecs", "npy", "idx", "jsonl", "fortune"}),
       "`auto`: from the file extension. Vector commands read `hdf5`, `fvecs`, `bvecs`, `npy`, "
       "`idx`; `dedup` and `run` read `jsonl` (= `auto`) or `fortune` (`%`-separated records)"},
      {"input.dataset", bind<&Config::input, &InputConfig::dataset>, any(),
       "HDF5 dataset holding the corpus (ann-benchmarks layout)"},
      {"input.batch_rows", bind<&Config::input, &InputConfig::batch_rows>, at_least(1),
       "rows read and added per batch: bounds the memory per rank"},
      {"input.text_field", bind<&Config::input, &InputConfig::text_field>, any(),
       "`dedup`, `run`: the JSONL field holding the text"},
      {"input.id_field", bind<&Config::input, &InputConfig::id_field>, any(),
       "`dedup`, `run`: the JSONL field naming a document in `duplicates.jsonl` and `ids.jsonl` "
       "(a string or a number); absent from a record: its global row number"},
      {"input.strict", bind<&Config::input, &InputConfig::strict>, any(),
       "`dedup`, `run`: bad input (malformed line, missing text, ...) fails the run (exit 1) "
       "instead of being counted and skipped; see [bad input](dedup.md#bad-input)"},
      {"input.max_record_bytes", bind<&Config::input, &InputConfig::max_record_bytes>, at_least(1),
       "`dedup`, `run`: longer records (lines) are bad input (`too_long`), skipped without being "
       "held in memory"},
      {"input.verify", bind<&Config::input, &InputConfig::verify>, one_of({"metadata", "content"}),
       "how `--resume` tells that an input file is unchanged: `metadata` (path, size, mtime, "
       "ctime, inode) or `content` (also an XXH3 of its bytes, read once by rank 0 and shared); "
       "see [fingerprints](checkpoints-and-faults.md#checkpoints)"},
      {"index.factory", bind<&Config::index, &IndexConfig::factory>, any(),
       "FAISS `index_factory` string; must yield a shardable `IndexIVF`: `IVF1024,Flat`, "
       "`IVF1024,PQ16np`, `IVF1024,SQ8`, `OPQ16,IVF1024,PQ16np`, `PCA64,IVF1024,Flat`, "
       "`IVF1024_HNSW32,Flat`, ... (`HNSW32`, `Flat`, `IVFPQR` or fast-scan: exit 2). `auto`: "
       "chosen for `index.memory_budget` and `index.target_recall` by measuring candidates on "
       "a sample of the corpus (see [index choice](index-choice.md)). Required by "
       "`build`; empty in `run`: `IVF<n>,Flat` with n about the square root of the documents "
       "indexed (at least 39 training rows per list)"},
      {"index.metric", bind<&Config::index, &IndexConfig::metric>, one_of({"l2", "ip"}),
       "`l2`, or `ip` (inner product; the k-means is spherical, as FAISS does)"},
      {"index.train_size", bind<&Config::index, &IndexConfig::train_size>, at_least(0),
       "k-means sample rows; `0`: min(rows, 256 × nlist), FAISS's own cap"},
      {"index.kmeans_iterations", bind<&Config::index, &IndexConfig::kmeans_iterations>,
       at_least(1), "coarse k-means iterations (FAISS's IVF default)"},
      {"index.codebook_sample", bind<&Config::index, &IndexConfig::codebook_sample>, at_least(1),
       "rows gathered on rank 0 to train PQ/SQ codebooks and OPQ/PCA transforms"},
      {"index.memory_budget", bind<&Config::index, &IndexConfig::memory_budget>, any(),
       "`index.factory: auto`: the most the finished index (`index.faiss`) may take (`4GiB`, "
       "`512MiB`); `0`: no limit"},
      {"index.target_recall", bind<&Config::index, &IndexConfig::target_recall>,
       in_range(0.01, 1.0),
       "`index.factory: auto`: the recall@`eval.k` the chosen index must reach on the tuning "
       "sample; among the candidates that reach it within the budget, the cheapest to search "
       "is chosen, and its nprobe is stored in `index.faiss`"},
      {"index.tune_rows", bind<&Config::index, &IndexConfig::tune_rows>, at_least(100),
       "`index.factory: auto`: rows of the corpus (a seeded sample) the candidates are built "
       "on; each rank holds them (and one candidate index per thread)"},
      {"index.tune_queries", bind<&Config::index, &IndexConfig::tune_queries>, at_least(10),
       "`index.factory: auto`: held-out sample rows searched to measure each candidate's "
       "recall"},
      {"resources.memory_per_rank", bind<&Config::resources, &ResourcesConfig::memory_per_rank>,
       any(),
       "memory each rank may use (`2GiB`, `512MiB`); stages plan their batches and buffers "
       "from it. `0`: what Slurm gives the task (`SLURM_MEM_PER_CPU` × its CPUs, or "
       "`SLURM_MEM_PER_NODE` / the tasks on the node), else the node's available memory (and "
       "its cgroup limit) / the ranks on the node. Left out of every fingerprint: results are "
       "the same bytes for any budget. See [memory](run-directory.md#memory-budget)"},
      {"seed", bind<&Config::seed>, at_least(0),
       "chooses the training sample, the k-means start and the codebook sample"},
      {"threads", bind<&Config::threads>, at_least(0),
       "OpenMP threads per rank; `0`: `$OMP_NUM_THREADS`, else the node's cores / the ranks on "
       "the node. Left out of every checkpoint's fingerprint: indexes, dedup and search results "
       "are the same bytes for any thread count"},
      {"output.dir", bind<&Config::output, &OutputConfig::dir>, required(),
       "the run directory: see [run-directory.md](run-directory.md)"},
      {"output.piece_rows", bind<&Config::output, &OutputConfig::piece_rows>, at_least(1),
       "rows per checkpointed piece of the add stage (rounded up to a multiple of 1024): a "
       "killed build loses at most the piece each rank was adding"},
      {"output.compression", bind<&Config::output, &OutputConfig::compression>,
       one_of({"zstd", "gzip", "none"}),
       "`kept/`'s shards (`dedup`, `run.write_kept`): `zstd` (`00000.jsonl.zst`, …), `gzip` "
       "(`.jsonl.gz`) or `none` (`.jsonl`); fortune corpora: no `.jsonl`"},
      {"output.max_file_bytes", bind<&Config::output, &OutputConfig::max_file_bytes>,
       at_least(1),
       "uncompressed size of a `kept/` shard (`1GiB`, `256MiB`, bytes): a shard starts at the first record that starts at "
       "or past each multiple of it (a shard holds at most this plus one record)"},
      {"output.layout", bind<&Config::output, &OutputConfig::layout>, one_of({"memory", "ondisk"}),
       "`memory`: `index.faiss` holds the whole index (FAISS's ArrayInvertedLists; stock FAISS "
       "reads it into memory, or maps it with `IO_FLAG_MMAP`); `ondisk`: `index.faiss` holds "
       "the header and `index.ivfdata` the lists (FAISS's OnDiskInvertedLists), which FAISS "
       "maps: an index larger than memory. Same lists, byte for byte. See "
       "[run-directory.md](run-directory.md#on-disk-layout)"},
      {"eval.queries", bind<&Config::eval, &EvalConfig::queries>, any(),
       "required by `eval`: a vector file, or an ann-benchmarks HDF5 (queries in `test`, "
       "ground truth in `neighbors`)"},
      {"eval.queries_dataset", bind<&Config::eval, &EvalConfig::queries_dataset>, any(),
       "HDF5 dataset of the queries"},
      {"eval.ground_truth", bind<&Config::eval, &EvalConfig::ground_truth>, any(),
       "ivecs / `.npy` / HDF5 `neighbors`; empty: from the HDF5 queries file, else the exact "
       "top-100 computed across the ranks"},
      {"eval.k", bind<&Config::eval, &EvalConfig::k>, between(1, 1024),
       "k reported in `eval.json` (searches use max(k, 100) to score recall@100)"},
      {"eval.nprobe", bind<&Config::eval, &EvalConfig::nprobe>, at_least(1),
       "nprobe values to evaluate (a single value is a one-element list)"},
      {"eval.max_queries", bind<&Config::eval, &EvalConfig::max_queries>, at_least(0),
       "use only the first N queries; `0`: all (`run.eval`: 1000 of the indexed documents)"},
      {"eval.target_recall", bind<&Config::eval, &EvalConfig::target_recall>, in_range(0.0, 1.0),
       "`eval.json`'s `recommended`: the smallest nprobe whose recall@`eval.k` reaches it, "
       "stored in `index.faiss` and used by `query` and `search` by default; `0`: "
       "`index.target_recall`"},
      {"dedup.ngram", bind<&Config::dedup, &DedupConfig::ngram>, between(1, 64),
       "word n-gram shingles"},
      {"dedup.num_perm", bind<&Config::dedup, &DedupConfig::num_perm>, between(1, 1024),
       "MinHash permutations: the first bands × rows are banded, all of them estimate Jaccard "
       "in the verification (`256` gives a sharper estimate: pair precision and recall ≥ 0.95 "
       "on SPDX and the fortunes, at about 1.5× the signature cost; see "
       "[bench/RESULTS.md](../bench/RESULTS.md#dedup-quality))"},
      {"dedup.bands", bind<&Config::dedup, &DedupConfig::bands>, between(0, 1024),
       "LSH bands; bands × rows ≤ num_perm. `bands` and `rows` both `0`: chosen from "
       "`dedup.threshold` (datasketch's optimal parameters)"},
      {"dedup.rows", bind<&Config::dedup, &DedupConfig::rows>, between(0, 1024),
       "rows (MinHash values) per LSH band"},
      {"dedup.threshold", bind<&Config::dedup, &DedupConfig::threshold>, in_range(0.01, 0.99),
       "Jaccard similarity at which two documents are near duplicates"},
      {"dedup.verify", bind<&Config::dedup, &DedupConfig::verify>, one_of({"signature", "exact"}),
       "candidate pairs are checked by the MinHash estimate (`signature`), or by the shingle "
       "sets (`exact`: held in memory)"},
      {"dedup.clusters", bind<&Config::dedup, &DedupConfig::clusters>,
       one_of({"components", "star"}),
       "`components`: a near cluster is a connected component of verified pairs; `star`: "
       "members below the threshold to the representative stay kept (no chaining)"},
      {"dedup.keep", bind<&Config::dedup, &DedupConfig::keep>, any(),
       "the copy kept per cluster: `first` (smallest row), `longest` (text bytes), "
       "`field:<name>` (largest numeric value of that JSONL field; missing = lowest)"},
      {"dedup.seed", bind<&Config::dedup, &DedupConfig::seed>, between(0, 4294967295),
       "MinHash permutations, as `datasketch.MinHash(seed=...)`"},
      {"dedup.near", bind<&Config::dedup, &DedupConfig::near>, any(), "`false`: exact dedup only"},
      {"dedup.unicode", bind<&Config::dedup, &DedupConfig::unicode>, any(),
       "NFKC + case folding of non-ASCII text"},
      {"dedup.punctuation", bind<&Config::dedup, &DedupConfig::punctuation>,
       one_of({"remove", "space", "keep"}),
       "punctuation and symbols: `remove`d, made a word break (`space`), or `keep`"},
      {"dedup.fold_digits", bind<&Config::dedup, &DedupConfig::fold_digits>, any(),
       "every digit becomes `0`"},
      {"dedup.write_pairs", bind<&Config::dedup, &DedupConfig::write_pairs>, any(),
       "also write `pairs.jsonl`: every pair dedup verified (exact duplicates with their kept "
       "copy, near candidate edges that passed verification); what `dedup-quality` scores"},
      {"partition.workload", bind<&Config::partition, &PartitionConfig::workload>, any(),
       "query sample the lists are sized and placed for (fvecs, `.npy`, HDF5, ...); empty: "
       "lists are placed by size"},
      {"partition.workload_dataset", bind<&Config::partition, &PartitionConfig::workload_dataset>,
       any(), "HDF5 dataset of the workload"},
      {"partition.weights", bind<&Config::partition, &PartitionConfig::weights>, any(),
       "optional: one weight per workload query (an N × 1 vector file)"},
      {"partition.weights_dataset", bind<&Config::partition, &PartitionConfig::weights_dataset>,
       any(), "HDF5 dataset of the weights"},
      {"partition.shards", bind<&Config::partition, &PartitionConfig::shards>, between(0, 65536),
       "`build` also writes the sharded layout with this many shards (`plan.json`, `shards/`; "
       "at most nlist); `0`: none. See [partitioning](partitioning-and-search.md)"},
      {"partition.nprobe", bind<&Config::partition, &PartitionConfig::nprobe>, at_least(1),
       "nprobe of the cost model (which lists a workload query probes)"},
      {"partition.max_nlist", bind<&Config::partition, &PartitionConfig::max_nlist>, at_least(0),
       "nlist after re-sizing; `0`: the factory's nlist (the same budget)"},
      {"partition.tiers", bind<&Config::partition, &PartitionConfig::tiers>, between(1, 64),
       "access-density tiers re-sized; `1`: keep the k-means lists"},
      {"partition.replicate_hot", bind<&Config::partition, &PartitionConfig::replicate_hot>,
       at_least(0), "the N hottest lists get a second shard"},
      {"partition.colocate", bind<&Config::partition, &PartitionConfig::colocate>, any(),
       "with a workload: lists its queries probe together go to one shard (fewer shards per "
       "query), if the shard cost stays within the slack"},
      {"partition.colocate_slack", bind<&Config::partition, &PartitionConfig::colocate_slack>,
       in_range(0.0, 1.0),
       "co-location may load a shard up to (1 + slack) × the mean expected cost"},
      {"partition.scan_cost", bind<&Config::partition, &PartitionConfig::scan_cost>,
       numbers_in_range(2, 0.0, 1e9),
       "`[a, b]` with b > 0: fixes the scan cost λ(s) = a + b·s seconds (then the plan is the "
       "same for any rank count); absent: calibrated at build time"},
      {"search.queries", bind<&Config::search, &SearchConfig::queries>, any(),
       "required by `search`: a vector file, or an ann-benchmarks HDF5"},
      {"search.queries_dataset", bind<&Config::search, &SearchConfig::queries_dataset>, any(),
       "HDF5 dataset of the queries"},
      {"search.k", bind<&Config::search, &SearchConfig::k>, between(1, 1024),
       "neighbours per query"},
      {"search.nprobe", bind<&Config::search, &SearchConfig::nprobe>, at_least(0),
       "lists probed per query; `0`: the run's recommended nprobe (`eval.json`, else "
       "`tune.json`), else 8"},
      {"search.max_queries", bind<&Config::search, &SearchConfig::max_queries>, at_least(0),
       "use only the first N queries; `0`: all"},
      {"search.batch_queries", bind<&Config::search, &SearchConfig::batch_queries>, at_least(1),
       "queries per serving rank per round (bounds messages and memory)"},
      // `shardforge run`
      {"run.dedup", bind<&Config::run, &RunConfig::dedup>, any(),
       "`run`: exact + near dedup (`dedup.*`) before embedding; `false`: every document is "
       "embedded"},
      {"run.semdedup", bind<&Config::run, &RunConfig::semdedup>, any(),
       "`run`: semantic dedup inside the inverted lists (`semdedup.*`)"},
      {"run.index", bind<&Config::run, &RunConfig::index>, any(),
       "`run`: add + merge into `index.faiss`; `false`: the index is trained (for semantic "
       "dedup) but not filled or written"},
      {"run.eval", bind<&Config::run, &RunConfig::eval>, any(),
       "`run`: recall@1/10/100 and QPS per `eval.nprobe` of `index.faiss` for "
       "`eval.max_queries` (`0`: 1000) of its own documents (evenly spaced ids) against their "
       "exact neighbours, written to `eval.json`"},
      {"run.write_kept", bind<&Config::run, &RunConfig::write_kept>, any(),
       "`run`: also write `kept/` as `dedup` does (the documents exact + near dedup kept; "
       "`output.compression`, `output.max_file_bytes`)"},
      {"embed.method", bind<&Config::embed, &EmbedConfig::method>,
       one_of({"hashed", "precomputed"}),
       "`run`: `hashed` (feature hashing, no model) or `precomputed` (vectors supplied with the "
       "corpus); see [embedders](text-to-index.md#embedders)"},
      {"embed.dim", bind<&Config::embed, &EmbedConfig::dim>, between(0, 65536),
       "`0`: the method's own (`hashed`: 256; `precomputed`: the data's); else checked against "
       "the data"},
      {"embed.seed", bind<&Config::embed, &EmbedConfig::seed>, at_least(0),
       "`hashed`: the feature-hashing seed"},
      {"embed.vectors", bind<&Config::embed, &EmbedConfig::vectors>, any(),
       "`precomputed`: HDF5 / `.npy` / fvecs file, one row per document in corpus order (row g "
       "= the g-th good record; skipped bad records have no row)"},
      {"embed.vectors_dataset", bind<&Config::embed, &EmbedConfig::vectors_dataset>, any(),
       "HDF5 dataset of `embed.vectors`"},
      {"embed.vectors_field", bind<&Config::embed, &EmbedConfig::vectors_field>, any(),
       "`precomputed`: the JSONL field holding each document's vector (an array of numbers), "
       "instead of `embed.vectors`"},
      {"embed.batch", bind<&Config::embed, &EmbedConfig::batch>, at_least(1),
       "documents per `embed()` call (batches are spread over the rank's threads)"},
      {"semdedup.eps", bind<&Config::semdedup, &SemDedupConfig::eps>, in_range(0.0, 2.0),
       "semantic duplicates: cosine ≥ 1 − eps inside one inverted list"},
      {"semdedup.report_eps", bind<&Config::semdedup, &SemDedupConfig::report_eps>,
       in_range(0.0, 2.0),
       "eps values whose removal counts are reported in `run.json` (not applied)"},
      {"slurm.job_name", bind<&Config::slurm, &SlurmConfig::job_name>, any(),
       "`submit --job-name`; empty: `shardforge-<command>`"},
      {"slurm.nodes", bind<&Config::slurm, &SlurmConfig::nodes>, at_least(1), "`submit --nodes`"},
      {"slurm.ntasks", bind<&Config::slurm, &SlurmConfig::ntasks>, at_least(0),
       "`submit --ntasks`: MPI ranks in all; `0`: not set"},
      {"slurm.ntasks_per_node", bind<&Config::slurm, &SlurmConfig::ntasks_per_node>, at_least(0),
       "`submit --ntasks-per-node`; `0`: not set (`1` when `ntasks` is not set either)"},
      {"slurm.cpus_per_task", bind<&Config::slurm, &SlurmConfig::cpus_per_task>, at_least(1),
       "`submit --cpus-per-task`, and the job's OpenMP threads per rank"},
      {"slurm.time", bind<&Config::slurm, &SlurmConfig::time>, any(),
       "`submit --time`, e.g. `\"02:00:00\"`; empty: the partition's default"},
      {"slurm.partition", bind<&Config::slurm, &SlurmConfig::partition>, any(),
       "`submit --partition`; empty: the cluster's default"},
      {"slurm.account", bind<&Config::slurm, &SlurmConfig::account>, any(),
       "`submit --account`; empty: the user's default"},
  };
  return kSchema;
}

const std::set<std::string>& sections() {
  static const std::set<std::string> kSections = [] {
    std::set<std::string> out;
    for (const Field& field : schema()) {
      for (size_t dot = field.key.find('.'); dot != std::string_view::npos;
           dot = field.key.find('.', dot + 1)) {
        out.emplace(field.key.substr(0, dot));
      }
    }
    return out;
  }();
  return kSections;
}

const Field* find_field(const std::string& key) {
  for (const Field& field : schema()) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (true) {
    size_t dot = key.find('.', begin);
    parts.push_back(key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  return parts;
}

}  // namespace sf::runtime::detail
