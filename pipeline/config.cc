#include "pipeline/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace sf::pipeline {
namespace {

// ---------------------------------------------------------------------------------------------
// The schema: one row per leaf key. To add a section, add fields to the structs in config.h and
// rows here; the value type comes from the bound field, so no other code changes.

// Where a key's value lives in Config. The alternative decides how the YAML value is parsed.
using Target = std::variant<std::string*, bool*, int*, int64_t*, uint64_t*, double*,
                            std::vector<std::string>*, std::vector<int>*, std::vector<double>*>;
using Bind = Target (*)(Config&);

template <auto kSection, auto kMember>
Target bind(Config& config) {
  return &((config.*kSection).*kMember);
}

template <auto kMember>
Target bind(Config& config) {
  return &(config.*kMember);
}

constexpr int64_t kNoMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

// Validation of one key. Lists given as [] are always an error; list elements follow the rule.
struct Rule {
  bool required = false;  // absent or null is an error; a required string must be non-empty
  int64_t min = kNoMin;   // integers (and integer list elements)
  int64_t max = kNoMax;
  double low = -std::numeric_limits<double>::infinity();  // reals: the closed range [low, high]
  double high = std::numeric_limits<double>::infinity();
  std::vector<std::string_view> choices;  // strings: allowed values, if non-empty
  size_t length = 0;  // lists: exactly this many elements, if non-zero
};

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

struct Field {
  std::string_view key;  // dotted path
  Bind bind;
  Rule rule;
  // What the key does, as markdown (docs/configuration.md is generated from it; links are
  // relative to docs/). The type, the allowed values and the default come from the row itself.
  std::string_view doc;
};

// Order here is the order of to_yaml's output and of docs/configuration.md. Defaults are the
// struct initialisers in config.h.
const std::vector<Field>& schema() {
  static const std::vector<Field> kSchema = {
      {"input.paths", bind<&Config::input, &InputConfig::paths>, required(),
       "the files forming one corpus; global row ids run across them in order. Vector files "
       "(`build`) or text files (`dedup`, `run`): see "
       "[file formats](run-directory.md#input-formats)"},
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
       "`IVF1024_HNSW32,Flat`, ... (`HNSW32`, `Flat`, `IVFPQR` or fast-scan: exit 2). Required by "
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
      {"search.nprobe", bind<&Config::search, &SearchConfig::nprobe>, at_least(1),
       "lists probed per query"},
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

// Every proper prefix of a schema key ("input", "index", ...): keys whose value is a map.
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

// ---------------------------------------------------------------------------------------------
// Helpers.

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

std::string trim(const std::string& text) {
  const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The closest known key or section within distance 2, or "".
std::string suggest(const std::string& unknown) {
  std::vector<std::string> candidates;
  for (const Field& field : schema()) candidates.emplace_back(field.key);
  for (const std::string& section : sections()) candidates.push_back(section);
  return closest_match(unknown, candidates);
}

// How a node reads in a message: "'abc'", "a map", "a list", "null".
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "null";
  }
}

// An integer as sign and magnitude, so that int64 and uint64 values compare exactly.
struct Integer {
  bool negative = false;  // never true with magnitude 0
  uint64_t magnitude = 0;

  Integer() = default;
  explicit Integer(uint64_t value) : magnitude(value) {}
  explicit Integer(int64_t value)
      : negative(value < 0),
        magnitude(value < 0 ? static_cast<uint64_t>(-(value + 1)) + 1
                            : static_cast<uint64_t>(value)) {}
  explicit Integer(int value) : Integer(int64_t{value}) {}
  explicit Integer(unsigned value) : Integer(uint64_t{value}) {}

  friend bool operator<(const Integer& a, const Integer& b) {
    if (a.negative != b.negative) return a.negative;
    return a.negative ? a.magnitude > b.magnitude : a.magnitude < b.magnitude;
  }
  std::string str() const { return (negative ? "-" : "") + std::to_string(magnitude); }
};

enum class IntegerParse { kOk, kNotInteger, kOverflow };

// Decimal, with an optional sign; nothing else (no spaces, no exponent, no fraction).
IntegerParse parse_integer(const std::string& text, Integer& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  bool negative = begin != end && *begin == '-';
  if (begin != end && (*begin == '-' || *begin == '+')) ++begin;
  if (begin == end || *begin < '0' || *begin > '9') return IntegerParse::kNotInteger;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(begin, end, magnitude);
  if (ptr != end) return IntegerParse::kNotInteger;
  if (ec == std::errc::result_out_of_range) return IntegerParse::kOverflow;
  out.magnitude = magnitude;
  out.negative = negative && magnitude != 0;
  return IntegerParse::kOk;
}

// ---------------------------------------------------------------------------------------------
// Loading and validation.

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  // Reads and parses the file; the top level must be a map (an empty file is an empty map).
  void read_file() {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) fail_file("is a directory, not a YAML file");
    std::ifstream in(path_);
    if (!in) fail_file(std::string("cannot open file: ") + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) fail_file("cannot read file");
    try {
      root_ = YAML::Load(text.str());
    } catch (const YAML::ParserException& e) {
      throw ConfigError(path_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
    } catch (const YAML::Exception& e) {
      fail_file(std::string("YAML error: ") + e.what());
    }
    if (root_.IsNull()) root_ = YAML::Node(YAML::NodeType::Map);
    if (!root_.IsMap()) fail_file("top level must be a map, got " + describe(root_));
    reject_duplicate_keys(root_, "");
  }

  // "a.b=value": sets a.b (creating maps on the way) to value parsed as YAML.
  void apply_override(const std::string& text) {
    size_t eq = text.find('=');
    std::string key = eq == std::string::npos ? "" : trim(text.substr(0, eq));
    std::vector<std::string> parts = split_key(key);
    bool malformed = key.empty() || std::any_of(parts.begin(), parts.end(),
                                                [](const std::string& p) { return p.empty(); });
    if (malformed) throw ConfigError("--set " + text + ": expected key=value");
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      throw ConfigError("--set " + text + ": bad YAML value: " + e.msg);
    }
    reject_duplicate_keys(value, key, &text);

    YAML::Node node = root_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node child = node[parts[i]];
      if (!child.IsMap()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        child.reset(node[parts[i]]);
      }
      node.reset(child);
    }
    node[parts.back()] = value;

    // The override now owns `key` and everything below it.
    for (auto it = origins_.begin(); it != origins_.end();) {
      bool below = it->first == key || it->first.rfind(key + ".", 0) == 0;
      it = below ? origins_.erase(it) : std::next(it);
    }
    origins_[key] = text;
  }

  // Checks every key against the schema and fills `config`.
  void build(Config& config) {
    collect(root_, "");
    for (const Field& field : schema()) {
      auto it = leaves_.find(std::string(field.key));
      std::string key(field.key);
      if (it == leaves_.end() || it->second.IsNull()) {
        if (field.rule.required) fail(key, key + " is required");
        continue;
      }
      std::visit([&](auto* target) { parse(key, it->second, field.rule, *target); },
                 field.bind(config));
    }
  }

 private:
  [[noreturn]] void fail_file(const std::string& what) const {
    throw ConfigError(path_ + ": " + what);
  }

  // Throws "<file>: <message>", naming the override that set `key` (or a key above or below
  // it, e.g. `--set eval={k: 0}` for eval.k, `--set seed.x=1` for seed) if one did.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    std::string text = path_ + ": " + message;
    const std::string* origin = nullptr;
    std::string prefix = key.substr(0, key.find('['));  // "eval.nprobe[1]" -> "eval.nprobe"
    for (std::string up = prefix; origin == nullptr;) {
      auto it = origins_.find(up);
      if (it != origins_.end()) origin = &it->second;
      size_t dot = up.rfind('.');
      if (dot == std::string::npos) break;
      up.resize(dot);
    }
    if (origin == nullptr) {
      auto it = origins_.lower_bound(prefix + ".");
      if (it != origins_.end() && it->first.rfind(prefix + ".", 0) == 0) origin = &it->second;
    }
    if (origin != nullptr) text += " (from --set " + *origin + ")";
    throw ConfigError(text);
  }

  [[noreturn]] void fail_value(const std::string& key, const std::string& what) const {
    fail(key, key + ": " + what);
  }

  // yaml-cpp keeps every entry of a repeated key (lookups and collect() would take one of
  // them silently): a key repeated in any map of the file, at any depth, is an error. With
  // `set_text`, `node` is the value of that --set.
  void reject_duplicate_keys(const YAML::Node& node, const std::string& prefix,
                             const std::string* set_text = nullptr) const {
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i)
        reject_duplicate_keys(node[i], prefix + "[" + std::to_string(i) + "]", set_text);
      return;
    }
    if (!node.IsMap()) return;
    std::map<std::string, int> first_line;  // key -> its 1-based line
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;
      const std::string& name = entry.first.Scalar();
      const std::string key = prefix.empty() ? name : prefix + "." + name;
      const int line = entry.first.Mark().line + 1;
      auto [it, fresh] = first_line.emplace(name, line);
      if (!fresh && set_text != nullptr)
        throw ConfigError("--set " + *set_text + ": duplicate key '" + key + "'");
      if (!fresh)
        fail_file("duplicate key '" + key + "' (lines " + std::to_string(it->second) + " and " +
                  std::to_string(line) + ")");
      reject_duplicate_keys(entry.second, key, set_text);
    }
  }

  // Walks the tree: known leaves go to leaves_, sections recurse, anything else is unknown.
  void collect(const YAML::Node& map, const std::string& prefix) {
    for (const auto& entry : map) {
      std::string name = entry.first.IsScalar() ? entry.first.Scalar() : describe(entry.first);
      std::string key = prefix.empty() ? name : prefix + "." + name;
      if (find_field(key) != nullptr) {
        leaves_[key] = entry.second;
      } else if (sections().count(key) != 0) {
        if (entry.second.IsMap()) {
          collect(entry.second, key);
        } else if (!entry.second.IsNull()) {
          fail_value(key, "expected a map, got " + describe(entry.second));
        }
      } else {
        std::string message = "unknown key '" + key + "'";
        std::string hint = suggest(key);
        if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
        fail(key, message);
      }
    }
  }

  void check_scalar(const std::string& key, const YAML::Node& node, const char* expected) const {
    if (!node.IsScalar())
      fail_value(key, std::string("expected ") + expected + ", got " + describe(node));
  }

  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             std::string& out) const {
    check_scalar(key, node, "a string");
    out = node.Scalar();
    if (rule.required && out.empty()) fail_value(key, "must not be empty");
    if (!rule.choices.empty() &&
        std::find(rule.choices.begin(), rule.choices.end(), out) == rule.choices.end()) {
      std::string allowed;
      for (std::string_view choice : rule.choices) {
        allowed += (allowed.empty() ? "" : "|") + std::string(choice);
      }
      fail_value(key, "expected one of " + allowed + ", got '" + out + "'");
    }
  }

  template <typename Int>
  std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>> parse(const std::string& key, const YAML::Node& node,
                                                  const Rule& rule, Int& out) const {
    check_scalar(key, node, "an integer");
    const std::string& text = node.Scalar();
    Integer value;
    switch (parse_integer(text, value)) {
      case IntegerParse::kOk:
        break;
      case IntegerParse::kNotInteger:
        fail_value(key, "expected an integer, got '" + text + "'");
      case IntegerParse::kOverflow:
        fail_value(key, "integer out of range, got '" + text + "'");
    }
    Integer min = std::max(Integer(rule.min), Integer(std::numeric_limits<Int>::min()));
    Integer max(std::numeric_limits<Int>::max());
    if (rule.max != kNoMax) max = std::min(max, Integer(rule.max));
    if (value < min || max < value) {
      std::string range;
      if (rule.max != kNoMax) {
        range = "between " + min.str() + " and " + max.str();
      } else {
        range = value < min ? ">= " + min.str() : "<= " + max.str();
      }
      fail_value(key, "must be " + range + ", got " + text);
    }
    out = value.negative ? static_cast<Int>(-static_cast<int64_t>(value.magnitude - 1) - 1)
                         : static_cast<Int>(value.magnitude);
  }

  // YAML 1.2 core booleans only: true|false (also True/TRUE, False/FALSE).
  void parse(const std::string& key, const YAML::Node& node, const Rule&, bool& out) const {
    check_scalar(key, node, "true or false");
    const std::string& text = node.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") {
      out = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      out = false;
    } else {
      fail_value(key, "expected true or false, got '" + text + "'");
    }
  }

  // A finite decimal number (an integer is fine), inside [rule.low, rule.high].
  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             double& out) const {
    check_scalar(key, node, "a number");
    const std::string& text = node.Scalar();
    double value = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    if (begin != end && *begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (begin == end || ptr != end || ec != std::errc() || !std::isfinite(value))
      fail_value(key, "expected a number, got '" + text + "'");
    if (value < rule.low || value > rule.high) {
      std::ostringstream range;
      range << "between " << rule.low << " and " << rule.high;
      fail_value(key, "must be " + range.str() + ", got " + text);
    }
    out = value;
  }

  // A list, or a single value taken as a one-element list. [] is an error.
  template <typename T>
  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             std::vector<T>& out) const {
    Rule element_rule = rule;
    element_rule.required = true;  // no empty strings inside a list
    if (node.IsMap()) fail_value(key, "expected a list, got a map");
    std::vector<T> values;
    if (node.IsScalar()) {
      values.emplace_back();
      parse(key, node, element_rule, values.back());
    } else {
      for (size_t i = 0; i < node.size(); ++i) {
        values.emplace_back();
        parse(key + "[" + std::to_string(i) + "]", node[i], element_rule, values.back());
      }
    }
    if (values.empty()) fail_value(key, "must not be empty");
    if (rule.length != 0 && values.size() != rule.length) {
      fail_value(key, "expected a list of " + std::to_string(rule.length) + " values, got " +
                          std::to_string(values.size()));
    }
    out = std::move(values);
  }

  std::string path_;
  YAML::Node root_;
  std::map<std::string, std::string> origins_;  // key -> the override that last set it
  std::map<std::string, YAML::Node> leaves_;    // schema key -> its node
};

// ---------------------------------------------------------------------------------------------
// Output.

YAML::Node to_node(const std::string& value) { return YAML::Node(value); }
YAML::Node to_node(bool value) { return YAML::Node(value); }
YAML::Node to_node(double value) {
  std::ostringstream text;  // shortest text that reads back as the same double
  text.precision(std::numeric_limits<double>::max_digits10);
  text << value;
  double shorter = 0;
  for (int digits = 1; digits < std::numeric_limits<double>::max_digits10; ++digits) {
    std::ostringstream attempt;
    attempt.precision(digits);
    attempt << value;
    std::istringstream(attempt.str()) >> shorter;
    if (shorter == value) return YAML::Node(attempt.str());
  }
  return YAML::Node(text.str());
}

template <typename Int>
std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, YAML::Node> to_node(
    Int value) {
  return YAML::Node(value);
}

// An empty list (a default such as partition.scan_cost) is written as null, which reads back
// as the default: [] is an error on input.
template <typename T>
YAML::Node to_node(const std::vector<T>& values) {
  if (values.empty()) return YAML::Node(YAML::NodeType::Null);
  YAML::Node node(YAML::NodeType::Sequence);
  for (const T& value : values) node.push_back(to_node(value));
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

// Every schema key with its value in `config`, nested by section, in schema order.
YAML::Node resolve(const Config& config) {
  Config copy = config;  // bind() hands out non-const pointers
  YAML::Node root(YAML::NodeType::Map);
  for (const Field& field : schema()) {
    std::vector<std::string> parts = split_key(std::string(field.key));
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node[parts[i]].IsDefined()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      YAML::Node child = node[parts[i]];
      node.reset(child);
    }
    node[parts.back()] =
        std::visit([](auto* target) { return to_node(*target); }, field.bind(copy));
  }
  return root;
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Loader loader(path);
  loader.read_file();
  for (const std::string& text : overrides) loader.apply_override(text);
  Config config;
  config.source = path;
  loader.build(config);
  config.resolved = resolve(config);
  return config;
}

void require(const Config& config, std::initializer_list<std::string_view> keys) {
  Config copy = config;  // bind() hands out non-const pointers
  for (std::string_view key : keys) {
    const Field* field = find_field(std::string(key));
    if (field == nullptr) throw std::logic_error("require: no schema key " + std::string(key));
    const bool empty = std::visit(
        [](auto* target) {
          using T = std::decay_t<decltype(*target)>;
          if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<int>> ||
                        std::is_same_v<T, std::vector<std::string>> ||
                        std::is_same_v<T, std::vector<double>>) {
            return target->empty();
          } else {
            return false;
          }
        },
        field->bind(copy));
    if (empty) throw ConfigError(config.source + ": " + std::string(key) + " is required");
  }
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << resolve(config);
  return std::string(out.c_str()) + "\n";
}

// ---------------------------------------------------------------------------------------------
// The configuration reference (docs/configuration.md), rendered from the schema rows.

namespace {

// A number as a reader writes it: 0.01, 2, 1e9.
std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  std::string text = out.str();
  for (const char* from : {"e+0", "e+"}) {
    const size_t at = text.find(from);
    if (at != std::string::npos) {
      text.replace(at, std::strlen(from), "e");
      break;
    }
  }
  return text;
}

// "integer ≥ 1", "integer in 1…1024", "number in [0.01, 0.99]", "one of `a`, `b`", ...
template <typename T>
std::string value_type(const Rule& rule) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (rule.choices.empty()) return "string";
    std::string out = "one of ";
    for (size_t i = 0; i < rule.choices.size(); ++i)
      out += (i == 0 ? "`" : ", `") + std::string(rule.choices[i]) + "`";
    return out;
  } else if constexpr (std::is_same_v<T, bool>) {
    return "`true` or `false`";
  } else if constexpr (std::is_integral_v<T>) {
    if (rule.max != kNoMax)
      return "integer in " + std::to_string(rule.min) + "…" + std::to_string(rule.max);
    if (rule.min != kNoMin) return "integer ≥ " + std::to_string(rule.min);
    return "integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    if (std::isfinite(rule.low) && std::isfinite(rule.high))
      return "number in [" + number_text(rule.low) + ", " + number_text(rule.high) + "]";
    if (std::isfinite(rule.low)) return "number ≥ " + number_text(rule.low);
    return "number";
  } else {
    using Element = typename T::value_type;
    std::string element = value_type<Element>(rule);
    if constexpr (std::is_same_v<Element, std::string>) {
      element = "strings";
    } else {  // "integer ≥ 1" -> "integers ≥ 1"
      element.insert(element.find(' ') == std::string::npos ? element.size() : element.find(' '),
                     "s");
    }
    return "list of " + (rule.length != 0 ? std::to_string(rule.length) + " " : std::string()) +
           element;
  }
}

// A default value as it is written in YAML, in a code span; "required" or "none" without one.
std::string default_text(const Field& field, const YAML::Node& value) {
  if (field.rule.required) return "required";
  if (value.IsNull()) return "none";
  YAML::Emitter out;
  out << value;
  return "`" + std::string(out.c_str()) + "`";
}

// A table cell: `|` would end it.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

struct Section {
  std::string_view name;   // the key's first part; "" for top-level keys
  std::string_view title;  // the heading
  std::string_view intro;  // markdown, may be empty
};

const Section kSections[] = {
    {"input", "input",
     "The corpus: vector files for `build` (and `eval`), text files for `dedup` and `run`."},
    {"index", "index", "The FAISS IVF index that `build` and `run` train and fill."},
    {"", "Top-level keys", ""},
    {"output", "output", ""},
    {"eval", "eval", "`eval`, and `run` with `run.eval: true`."},
    {"dedup", "dedup", "`dedup`, and the dedup step of `run`: see [dedup.md](dedup.md)."},
    {"partition", "partition",
     "`build`: workload-aware list sizes and the sharded layout that `search` serves: see "
     "[partitioning-and-search.md](partitioning-and-search.md)."},
    {"search", "search", "`search` over the sharded layout."},
    {"run", "run",
     "`shardforge run`: which of its stages run (reading and embedding always do): see "
     "[text-to-index.md](text-to-index.md)."},
    {"embed", "embed", "`run`: the embedder."},
    {"semdedup", "semdedup", "`run`: semantic dedup inside the inverted lists."},
    {"slurm", "slurm",
     "Defaults for the flags of `shardforge submit` (its flags win): see [slurm.md](slurm.md)."},
};

const Section& section_of(std::string_view key) {
  const size_t dot = key.find('.');
  const std::string_view name = dot == std::string_view::npos ? "" : key.substr(0, dot);
  for (const Section& section : kSections)
    if (section.name == name) return section;
  throw std::logic_error("config_reference_markdown: no section for key " + std::string(key));
}

}  // namespace

std::string config_reference_markdown() {
  std::string out =
      "# Configuration reference\n"
      "\n"
      "<!-- Generated from the schema in pipeline/config.cc; do not edit. Regenerate with\n"
      "     cmake --build build --target config_reference && "
      "build/tools/config_reference > docs/configuration.md\n"
      "     (the unit test ConfigReference.DocMatchesTheSchema fails while it differs). -->\n"
      "\n"
      "Every command reads one YAML file, then applies each `--set key=value` in order (dotted "
      "keys, YAML values: `--set index.factory=IVF4096,PQ32np --set \"eval.nprobe=[1,8,32]\"`). "
      "Every key is listed below. An unknown key (with a \"did you mean\" hint), a key repeated "
      "in the file or in one `--set`, a wrong type or a value out of range is an error that "
      "names the key and the file (and the `--set` that set it), exit code 2, before anything "
      "is changed. Relative paths are relative to the working directory. A list key also takes "
      "a single value (a one-element list); `[]` is an error. Each command writes the effective "
      "configuration (file, overrides and defaults) to `config.yaml` in its run directory.\n"
      "\n"
      "Input and output file formats: [run-directory.md](run-directory.md). Which keys each "
      "stage's checkpoint depends on: "
      "[checkpoints-and-faults.md](checkpoints-and-faults.md#checkpoints).\n";
  Config defaults;
  const Section* current = nullptr;
  for (const Field& field : schema()) {
    if (field.doc.empty())
      throw std::logic_error("config_reference_markdown: schema key " + std::string(field.key) +
                             " has no description");
    const Section& section = section_of(field.key);
    if (&section != current) {
      current = &section;
      out += "\n## " + std::string(section.title) + "\n\n";
      if (!section.intro.empty()) out += std::string(section.intro) + "\n\n";
      out += "| key | type | default | meaning |\n|---|---|---|---|\n";
    }
    const Target target = field.bind(defaults);
    const std::string type = std::visit(
        [&](auto* value) { return value_type<std::decay_t<decltype(*value)>>(field.rule); },
        target);
    const YAML::Node value = std::visit([](auto* v) { return to_node(*v); }, target);
    out += "| `" + std::string(field.key) + "` | " + cell(type) + " | " +
           cell(default_text(field, value)) + " | " + cell(field.doc) + " |\n";
  }
  return out;
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  constexpr size_t kMaxDistance = 2;
  std::string best;
  size_t best_distance = kMaxDistance + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

}  // namespace sf::pipeline
