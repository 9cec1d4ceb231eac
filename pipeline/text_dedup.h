// The text dedup stages as `dedup` and `run` compose them (runtime/stage_runner.h), sharing a
// DedupedCorpus by reference:
//
//   read+sketch  every rank reads its pieces of input.paths and sketches each record
//                (stages/dedup/corpus.h), then the bad input is reported across ranks
//                (input.strict: an agreed InputError). Not checkpointed by the runner, never
//                skipped: each rank publishes sketch/rank-RRRRR.sfar with its own marker
//                "sketch/rank-RRRRR" (everything read_and_sketch computed but the texts), and a
//                resumed rank reads it back instead of reading and hashing its pieces (the texts
//                a later stage needs are then read again, without sketching). A stop request
//                during reading abandons it at once (no sketch) and is agreed after the stage.
//                Memory: what read+sketch, exact and near will hold (stages/dedup/memory_plan.h)
//                is counted as the records come; a rank over the budget stops reading at the
//                next batch and every rank fails alike (check_dedup_budget) before any sketch
//                is published, so exact and near never start over it.
//   exact        exact duplicates (stages/dedup/clusters.h); no checkpoint of its own
//   near         near duplicates among the exact survivors (dedup.near); no checkpoint. Memory:
//                one band's keys and buckets at a time and the candidate pairs (kept unique
//                between bands), linear in the rank's records, planned with read+sketch's (no
//                rounds needed); the verification's copies of remote candidates' signatures
//                are bounded by the candidate pairs only
//   verdicts     the final clusters (stages/dedup/final_clusters.h); verdicts/rank-R.sfar,
//                marker "verdicts" with the counts. With dedup.write_pairs not checkpointed:
//                the verified pairs are not in it, so a resumed run makes them again.
// The sketch depends on the rank count (the pieces do), and not on dedup.threshold, bands,
// rows, verify or clusters unless they change the signature width or the shingle sets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "io/text_corpus.h"
#include "runtime/config.h"
#include "runtime/stage_runner.h"
#include "stages/dedup/bad_input.h"
#include "stages/dedup/clusters.h"
#include "stages/dedup/corpus.h"
#include "stages/dedup/final_clusters.h"
#include "stages/dedup/memory_plan.h"
#include "stages/dedup/text.h"

namespace sf::pipeline {

namespace dd = stages::dedup;

// ---- config -> options; each throws runtime::ConfigError naming the key and the file ----
dd::KeepPolicy parse_keep_policy(const runtime::Config& config);
io::TextFormat dedup_text_format(const runtime::Config& config);  // auto = jsonl
dd::LshParams dedup_lsh_params(const runtime::Config& config);
dd::NormaliseOptions dedup_normalise_options(const runtime::Config& config);
io::TextReadOptions dedup_read_options(const runtime::Config& config, const dd::KeepPolicy& keep);

// What the dedup stages take from the config: the same on every rank.
struct DedupSetup {
  dd::KeepPolicy keep;
  io::TextReadOptions read;
  bool dedup = true;          // find duplicates at all (run.dedup)
  bool near = false;          // and near ones: dedup and dedup.near
  bool exact_verify = false;  // near and dedup.verify exact: shingle sets are kept
  dd::LshParams lsh;          // near only
};
DedupSetup make_dedup_setup(const runtime::Config& config, bool dedup);

constexpr const char* kSketchDir = "sketch";
constexpr const char* kVerdictsDir = "verdicts";
// Format versions of the checkpoint files, also parts of their fingerprints (a checkpoint of
// another format does not verify: it is redone). 1: every field an array section.
constexpr uint32_t kSketchFormatVersion = 2;    // fields as one Boost archive, bulk as arrays
constexpr uint32_t kVerdictsFormatVersion = 2;  // the verdicts as one Boost archive

// The sketch checkpoint file (io/array_file.h, kind "dedup-sketch"). write: all per-document
// fields of `corpus` but the texts, the signatures and shingle sets, counters and bad input.
// read: fills them back into `corpus`, whose files and pieces are planned already;
// `signatures` false skips the signatures and shingle sets (verdicts known). Throws
// io::FormatVersionError naming the file for a file of another format version (an older
// shardforge's), std::runtime_error naming it when it is damaged or does not fit the pieces.
void write_sketch_file(const std::string& path, const dd::LocalCorpus& corpus);
void read_sketch_file(const std::string& path, dd::LocalCorpus& corpus, bool signatures);
// The verdicts checkpoint file (kind "dedup-verdicts"); throws as read_sketch_file.
void write_verdicts_file(const std::string& path, const std::vector<dd::FinalVerdict>& verdicts);
std::vector<dd::FinalVerdict> read_verdicts_file(const std::string& path);

// Collective: what the dedup stages need on the rank that holds most (stages::dedup::dedup_needs
// of `share`, the largest of the ranks') against `budget` (bytes 0: none). Throws
// runtime::ConfigError on every rank alike naming the stage, the records and signatures, the
// budget and what to change (more ranks, dedup.num_perm, resources.memory_per_rank) when it
// does not fit. `width`, `shingle_sets`, `copied`: as dedup_needs; `partial`: this rank
// stopped reading at the budget (its counts are a floor).
void check_dedup_budget(cluster::Comm& comm, const runtime::Config& config,
                        const dd::DedupShare& share, int width, bool shingle_sets, bool copied,
                        bool partial, const runtime::MemoryBudget& budget);

// What the dedup stages fill in, on every rank, for the stages after them.
struct DedupedCorpus {
  int ranks = 1;      // set by the command: the rank count (the pieces depend on it)
  int threads = 1;    // set by the command: threads per rank, for the log
  DedupSetup setup;   // read+sketch's configure
  // read+sketch
  dd::LocalCorpus corpus;
  dd::KeptTexts texts;          // the texts kept in corpus
  std::vector<int64_t> begins;  // rank r holds global rows [begins[r], begins[r+1])
  cluster::RowRange range;
  int64_t total_docs = 0;
  uint64_t local_bytes_in = 0;
  nlohmann::json bad_report = nlohmann::json::object();  // rank 0: per file
  int64_t bad_total = 0;
  int sketches_reused = 0;  // ranks that read their sketch checkpoint back
  // exact, near: this rank's verdicts of each (inputs of verdicts)
  std::vector<dd::Verdict> exact, near;
  // dedup.write_pairs: this rank's verified pairs, sorted by row: an exact duplicate and the
  // kept doc of its hash group (similarity 1); a near candidate edge that passed verification.
  std::vector<dd::NearPair> exact_pairs, near_pairs;
  // verdicts (global counts)
  int64_t exact_removed = 0, near_removed = 0, split_off = 0;
  dd::NearStats near_stats;
  std::vector<dd::FinalVerdict> verdicts;  // this rank's removed documents, sorted by row
  int64_t clusters = 0, largest_cluster = 0;
  bool verdicts_reused = false;

  // The id of a global row held here: the id field's JSON text, else the row number.
  std::string id_of_local(uint64_t row) const;
  // duplicates.jsonl's location of a global row held here that has no id field: `, "<key
  // prefix>file": "<path>", "<key prefix>line": <1-based line>`; "" when it has an id.
  std::string location_of_local(uint64_t row, const std::string& key_prefix = "") const;
};

// dedup.json's and the verdicts marker's near-step figures.
nlohmann::json near_counts_json(const dd::NearStats& stats);

// No runner marker: a marker per rank, its own (sketch/rank-RRRRR).
class ReadSketchStage : public runtime::TransientStage {
 public:
  // `dedup`: false when run.dedup is off (exact and near then find nothing). `texts`: what
  // corpus keeps for the stage named `texts_for` (if not empty), unless that stage is reused.
  ReadSketchStage(DedupedCorpus& flow, bool dedup, dd::KeptTexts texts = {},
                  std::string texts_for = "")
      : flow_(flow), dedup_(dedup), texts_(texts), texts_for_(std::move(texts_for)) {}
  std::string name() const override { return "read+sketch"; }
  void configure(runtime::StageOptions& options) override;
  bool skippable() const override { return false; }     // every later stage reads the corpus
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  DedupedCorpus& flow_;
  bool dedup_;
  dd::KeptTexts texts_;
  std::string texts_for_;
};

// Feeds verdicts only (what its work depends on is in verdicts' fingerprint).
class ExactStage : public runtime::TransientStage {
 public:
  explicit ExactStage(DedupedCorpus& flow) : flow_(flow) {}
  std::string name() const override { return "exact"; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  DedupedCorpus& flow_;
};

// Feeds verdicts only (what its work depends on is in verdicts' fingerprint).
class NearStage : public runtime::TransientStage {
 public:
  explicit NearStage(DedupedCorpus& flow) : flow_(flow) {}
  std::string name() const override { return "near"; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  DedupedCorpus& flow_;
};

class VerdictsStage : public runtime::Stage {
 public:
  explicit VerdictsStage(DedupedCorpus& flow) : flow_(flow) {}
  std::string name() const override { return "verdicts"; }
  void configure(runtime::StageOptions& options) override;
  bool checkpointed() const override { return !write_pairs_; }
  bool skippable() const override { return false; }  // the outputs are made from them
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;

 private:
  DedupedCorpus& flow_;
  bool write_pairs_ = false;
};

}  // namespace sf::pipeline
