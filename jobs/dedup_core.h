// Internal to jobs/: the read -> sketch -> exact -> near -> final verdicts part of `dedup`
// (jobs/dedup.h), shared by `dedup` (which then writes kept/) and `run` (which embeds the
// survivors). The corpus is read once; with DedupTexts the normalised texts (and the raw
// records) stay in memory for the embedder.
//
// Checkpoints (pipeline/checkpoint.h), in the run directory:
//   sketch/rank-RRRRR.sfar  marker "sketch/rank-RRRRR", written by each rank after it read and
//       sketched its pieces: everything read_and_sketch computed except the texts (row
//       metadata, exact hashes, MinHash signatures, shingle sets with dedup.verify exact, bad
//       input). A resumed rank reads it back instead of reading and hashing its pieces again.
//   verdicts/rank-RRRRR.sfar  marker "verdicts" (rank 0, once every rank published its file):
//       the final verdicts of each rank; the counts are in the marker's info.
// Both depend on the rank count (the pieces do); the sketch not on dedup.threshold, bands,
// rows, verify or clusters unless they change the signature width or the shingle sets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <fstream>
#include <map>
#include <string>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/archive.h"
#include "cluster/comm.h"
#include "io/text_corpus.h"
#include "pipeline/checkpoint.h"
#include "jobs/dedup.h"
#include "pipeline/config.h"
#include "pipeline/run_dir.h"
#include "stages/dedup/clusters.h"
#include "stages/dedup/minhash.h"

namespace sf::jobs {

constexpr int kFirstBadLines = 5;  // line numbers kept per file and kind

// This rank's bad input: per piece and kind, the count and the first lines.
struct BadLog {
  struct Entry {
    int64_t count = 0;
    std::vector<std::pair<int64_t, std::string>> first;  // piece-relative line, detail
  };
  std::map<std::pair<int, int>, Entry> entries;  // (piece index, kind) -> entry
  int64_t total = 0;

  void add(int piece, const io::BadRecord& bad) {
    Entry& e = entries[{piece, static_cast<int>(bad.kind)}];
    ++e.count;
    ++total;
    if (static_cast<int>(e.first.size()) < kFirstBadLines)
      e.first.emplace_back(bad.line, bad.detail);
  }
};

// This rank's documents (good records), in corpus order: local doc i is global row
// range.begin + i.
struct LocalCorpus {
  std::vector<io::TextFile> files;
  std::vector<io::TextPiece> pieces;
  std::vector<int64_t> piece_lines;        // lines per piece
  std::vector<int64_t> piece_line_offset;  // lines of the piece's file in earlier ranks' pieces
  std::vector<double> keep_score;
  std::vector<stages::dedup::Hash128> hashes;
  std::vector<int32_t> slot;  // signature slot per doc; -1: empty normalised text
  std::vector<uint32_t> raw_bytes;
  std::vector<int64_t> doc_line;     // piece-relative line of each doc
  std::vector<int64_t> piece_docs;   // first doc of each piece, and one past the last
  std::vector<std::string> ids;      // JSON text of the id field, "" when absent
  std::vector<uint32_t> signatures;  // slots x num_perm
  std::vector<std::vector<uint64_t>> shingle_sets;  // per slot, with dedup.verify: exact
  std::vector<std::string> texts;    // DedupTexts::normalised: normalised text per doc
  std::vector<std::string> raw;      // DedupTexts::raw: the record as in the input per doc
  int64_t slots = 0;
  int64_t local_exact_skipped = 0;  // signatures not computed: same hash seen on this rank
  // Wall seconds of the two sketch steps (inside read+sketch) and the text bytes they saw.
  double normalise_seconds = 0, signature_seconds = 0;
  uint64_t text_bytes = 0, signature_text_bytes = 0;
  BadLog bad;

  // The piece holding local doc i, and the doc's 1-based line in its file.
  size_t piece_of(int64_t i) const;
  int64_t file_line(int64_t i) const;
};

// What `dedup` and `run` take from the config before any work: the same on every rank.
struct DedupSetup {
  KeepPolicy keep;
  io::TextReadOptions read;
  bool dedup = true;         // find duplicates at all (run.dedup)
  bool near = false;         // and near ones: dedup and dedup.near
  bool exact_verify = false;  // near and dedup.verify exact: shingle sets are kept
  stages::dedup::LshParams lsh;  // near only
};
// Throws pipeline::ConfigError naming the key and the config file.
DedupSetup make_dedup_setup(const pipeline::Config& config, bool dedup);

// The fingerprints of the dedup checkpoints (see above). `sketch` is the part every rank
// shares (config keys, input files, rank count); `sketch_rank` names this rank's marker.
struct DedupFingerprints {
  pipeline::Fingerprint sketch, sketch_rank, verdicts;
};
// Local; stats the input files (throws io::InputError naming one that is missing).
DedupFingerprints dedup_fingerprints(const pipeline::Config& config, const DedupSetup& setup,
                                     int rank, int size);
constexpr const char* kSketchDir = "sketch";
constexpr const char* kVerdictsDir = "verdicts";
// Format versions of the checkpoint files, also parts of their fingerprints (a checkpoint of
// another format does not verify: it is redone). 1: every field an array section.
constexpr uint32_t kSketchFormatVersion = 2;    // fields as one Boost archive, bulk as arrays
constexpr uint32_t kVerdictsFormatVersion = 2;  // the verdicts as one Boost archive

struct FinalVerdict {  // one removed document
  uint64_t row, cluster, representative;
  bool near;
  double similarity;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & row & cluster & representative & near & similarity;
  }
};

struct DedupTexts {
  bool normalised = false;  // keep LocalCorpus::texts
  bool raw = false;         // keep LocalCorpus::raw
};

// The sketch checkpoint file (io/array_file.h, kind "dedup-sketch"). write: all per-document
// fields of `corpus` but the texts, the signatures and shingle sets, counters and bad input.
// read: fills them back into `corpus`, whose files and pieces are planned already;
// `signatures` false skips the signatures and shingle sets (verdicts known). Throws
// io::FormatVersionError naming the file for a file of another format version (an older
// shardforge's), std::runtime_error naming it when it is damaged or does not fit the pieces.
void write_sketch_file(const std::string& path, const LocalCorpus& corpus);
void read_sketch_file(const std::string& path, LocalCorpus& corpus, bool signatures);
// The verdicts checkpoint file (kind "dedup-verdicts"); throws as read_sketch_file.
void write_verdicts_file(const std::string& path, const std::vector<FinalVerdict>& verdicts);
std::vector<FinalVerdict> read_verdicts_file(const std::string& path);

// What read_and_dedup returns on every rank.
struct DedupedCorpus {
  LocalCorpus corpus;
  std::vector<int64_t> begins;  // rank r holds global rows [begins[r], begins[r+1])
  cluster::RowRange range;
  int64_t total_docs = 0;
  uint64_t local_bytes_in = 0;
  nlohmann::json bad_report = nlohmann::json::object();  // rank 0: per file
  int64_t bad_total = 0;
  stages::dedup::LshParams lsh;
  int64_t exact_removed = 0, near_removed = 0, split_off = 0;  // global
  stages::dedup::NearStats near_stats;
  std::vector<FinalVerdict> verdicts;  // this rank's removed documents, sorted by row
  // dedup.write_pairs: this rank's verified pairs, sorted by row: an exact duplicate and the
  // kept doc of its hash group (similarity 1); a near candidate edge that passed verification.
  std::vector<stages::dedup::NearPair> exact_pairs, near_pairs;
  int64_t clusters = 0, largest_cluster = 0;
  int sketches_reused = 0;   // ranks that read their sketch checkpoint back
  bool verdicts_reused = false;
};

// Collective. Reads this rank's pieces of input.paths, reports bad input (input.strict: an
// agreed InputError), and unless setup.dedup is false finds exact and near duplicates
// (dedup.near) with their final clusters. Stages logged: read+sketch, exact, near, clusters.
// Checkpoints the sketch and the verdicts; with config.resume reads back those whose markers
// verify (the texts of `keep_texts` are then read again, without sketching). Safe points
// (pipeline::Stopped) after each checkpoint. REQUIRES: rank 0 created kSketchDir and
// kVerdictsDir in the run directory.
DedupedCorpus read_and_dedup(cluster::Comm& comm, const pipeline::Config& config,
                             const DedupSetup& setup, const DedupFingerprints& fps,
                             const pipeline::Checkpoints& checkpoints, int threads,
                             DedupTexts keep_texts, pipeline::StageLog& log,
                             const stages::ProgressFn& progress);

// The rank holding global `row`.
int owner_of(const std::vector<int64_t>& begins, uint64_t row);

// Collective: for every row in `wanted`, answer(row) computed by the rank that holds it. The
// answer is any type cluster/archive.h serialises (a std::string, a struct with serialize()).
template <class Answer>
auto fetch_by_row(cluster::Comm& comm, const std::vector<int64_t>& begins,
                  const std::vector<uint64_t>& wanted, const Answer& answer)
    -> std::unordered_map<uint64_t, std::decay_t<decltype(answer(uint64_t{}))>> {
  using T = std::decay_t<decltype(answer(uint64_t{}))>;
  std::vector<std::vector<uint64_t>> asks(static_cast<size_t>(comm.size()));
  for (uint64_t row : wanted) asks[static_cast<size_t>(owner_of(begins, row))].push_back(row);
  for (auto& rows : asks) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  std::vector<std::vector<uint64_t>> requests = asks;
  requests = cluster::exchange(comm, requests);  // the rows each rank asks of this one
  std::vector<std::vector<T>> replies(requests.size());  // in the order asked
  for (size_t r = 0; r < requests.size(); ++r)
    for (uint64_t row : requests[r]) replies[r].push_back(answer(row));
  const std::vector<std::vector<T>> answers = cluster::alltoallv_as(comm, replies, "fetch_by_row");
  std::unordered_map<uint64_t, T> out;
  for (size_t r = 0; r < answers.size(); ++r) {
    if (answers[r].size() != asks[r].size())
      throw std::logic_error("fetch_by_row: rank " + std::to_string(r) + " answered " +
                             std::to_string(answers[r].size()) + " of " +
                             std::to_string(asks[r].size()) + " rows");
    for (size_t k = 0; k < asks[r].size(); ++k) out.emplace(asks[r][k], answers[r][k]);
  }
  return out;
}

// "part-RRRRR" (+ ".jsonl" for JSONL).
std::string part_name(int rank, io::TextFormat format);

// Concatenates <parts_dir>/part-RRRRR.jsonl of every rank into `path` (atomic), then removes
// parts_dir. Throws naming a missing part.
void concat_parts(const std::string& parts_dir, int ranks, const std::string& path);

// Writes text with an ofstream; throws naming the file.
class FileWriter {
 public:
  explicit FileWriter(const std::string& path);
  void write(std::string_view s);
  void close();

 private:
  std::string path_;
  std::vector<char> buf_;
  std::ofstream out_;
};

}  // namespace sf::jobs
