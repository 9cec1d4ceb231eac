// Internal to jobs/: the read -> sketch -> exact -> near -> final verdicts part of `dedup`
// (jobs/dedup.h), shared by `dedup` (which then writes kept/) and `run` (which embeds the
// survivors). The corpus is read once; with DedupTexts the normalised texts (and the raw
// records) stay in memory for the embedder.
#pragma once

#include <cstdint>
#include <functional>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "io/text_corpus.h"
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

struct FinalVerdict {  // one removed document
  uint64_t row, cluster, representative;
  bool near;
  double similarity;
};

struct DedupTexts {
  bool normalised = false;  // keep LocalCorpus::texts
  bool raw = false;         // keep LocalCorpus::raw
};

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
};

// Collective. Reads this rank's pieces of input.paths, reports bad input (input.strict: an
// agreed InputError), and unless `dedup` is false finds exact and near duplicates (dedup.near)
// with their final clusters. Stages logged: read+sketch, exact, near, clusters.
DedupedCorpus read_and_dedup(cluster::Comm& comm, const pipeline::Config& config,
                             const io::TextReadOptions& read, const KeepPolicy& keep,
                             int threads, bool dedup, DedupTexts keep_texts,
                             pipeline::StageLog& log, const stages::ProgressFn& progress);

// The rank holding global `row`.
int owner_of(const std::vector<int64_t>& begins, uint64_t row);

// Collective: for every row in `wanted`, answer(row) computed by the rank that holds it.
std::unordered_map<uint64_t, std::string> fetch_by_row(
    cluster::Comm& comm, const std::vector<int64_t>& begins, const std::vector<uint64_t>& wanted,
    const std::function<std::string(uint64_t)>& answer);

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
