// The stages of `shardforge run` after the dedup (commands/run.h), on the runner of
// runtime/stage_runner.h. They share a TextIndex by reference, and read the dedup's results
// only through the DedupedCorpus they are given:
//
//   embed        fit the embedder on every document, embed the dedup survivors (L2-normalised),
//                reading the rank's texts again in batches planned from the memory budget (once
//                for hashed: Embedder::embeds_while_fitting; twice otherwise);
//                the vectors go straight to a file per rank (embed/vectors-R.npy, the rank's
//                survivors in row order: the files in rank order are the survivors' matrix),
//                their rows and keep scores to block-aligned ranges of the survivors'
//                numbering; marker "embed": embed/rank-R.sfar (rows, keep scores),
//                embed/vectors-R.npy and embed/embedder.json
//   check-index  (semdedup or index) index.factory (or auto_factory) fits the embedded corpus,
//                partition.* fits its lists; no marker, never skipped
//   train        pipeline/index_build.h, on the embedded vectors
//   semdedup     (run.semdedup) semantic duplicates inside each inverted list; marker
//                "semdedup": semdedup/rank-R.sfar (this rank's verdicts, by block)
//   compact      (run.index) the semantic survivors' vectors of the rank's block, read in
//                batches, to run.tmp/compact/vectors-R.npy: the files in rank order are the
//                index's rows in index-id order (block-aligned ranges of them); no marker
//   partition, add, merge   pipeline/index_build.h
//   eval         (run.eval) the merged index searched with a sample of its own vectors;
//                marker "eval": eval.json
//   outputs      the semantic verdicts back to the reading ranks; ids.jsonl, duplicates.jsonl,
//                embedder.json; marker "outputs"
//
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "pipeline/text_dedup.h"
#include "runtime/config.h"
#include "runtime/stage_runner.h"
#include "stages/dedup/semantic.h"
#include "stages/embed/embedder.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {

constexpr const char* kEmbedDir = "embed";
constexpr const char* kEmbedderFile = "embedder.json";
constexpr const char* kEmbedderCheckpoint = "embed/embedder.json";  // the embed stage's copy
constexpr const char* kSemanticDir = "semdedup";
constexpr const char* kEvalFile = "eval.json";
constexpr const char* kRunTmpDir = "run.tmp";  // the outputs' parts (run.tmp/ids, duplicates)
constexpr const char* kCompactDir = "run.tmp/compact";  // compact's vectors, per rank
constexpr const char* kEmbedTmpDir = "run.tmp/embed";   // embed's unfinished rows, per rank
constexpr uint32_t kEmbeddingsFormatVersion = 2;  // 2: the vectors in embed/vectors-R.npy
constexpr uint32_t kSemanticFormatVersion = 1;

// embed.* -> stage options (also `shardforge query`'s embedder).
stages::embed::EmbedOptions run_embed_options(const runtime::Config& config);
// "IVF<n>,Flat" with n about sqrt(rows), at least 39 rows per list, n >= 1.
std::string auto_factory(int64_t rows);
// index.factory, or auto_factory(rows) when it is empty.
std::string run_factory(const runtime::Config& config, int64_t rows);

struct SurvivorRef {  // travels with its vector to the block-aligned ranges
  uint64_t row;
  double keep_score;
};

struct SemanticDuplicate {  // a semantic verdict: the document `row` is removed
  uint64_t row, representative;
  double similarity;
};

// What became of a document a rank read.
enum class Removal : char { kKept, kDuplicate /* exact or near */, kSemantic };

// What the stages of `run` share, by reference: each fills its part.
struct TextIndex {
  IndexBuild build;  // the index stages' state (train .. merge)

  // embed: the survivors' rows and keep scores of this rank's block, in block-aligned ranges
  // of `embedded` rows (stages::rank_rows); their vectors (L2-normalised) are in
  // `embeddings`, opened by check-index over every rank's embed/vectors-R.npy (a rank reads
  // only its block, in batches).
  int dim = 0;
  int64_t embedded = 0;
  std::vector<SurvivorRef> refs;
  int64_t text_bytes = 0;  // embedded documents' text bytes, all ranks
  double seconds = 0;      // both passes' wall seconds on the slowest rank
  std::string embedder_text;  // rank 0: embedder.json
  std::unique_ptr<io::VectorCorpus> embeddings;

  // semdedup: the verdicts of the documents in this rank's block (by row).
  std::vector<SemanticDuplicate> semantic;
  stages::dedup::SemanticStats semantic_stats;

  // compact: the semantic survivors' vectors, `indexed` rows in index-id order (every rank's
  // run.tmp/compact/vectors-R.npy); this rank's block-aligned range is build.range.
  int64_t indexed = 0;
  std::unique_ptr<io::VectorCorpus> index_rows;
};

// Collective (sums the semantic verdicts). run.json's figures of these stages: docs_embedded,
// semantic_duplicates and the semantic counts (at every semdedup.report_eps), embed,
// embed_throughput (`threads` per rank), factory, metric, nlist, ntotal.
nlohmann::json text_index_summary(cluster::Comm& comm, const runtime::Config& config,
                                  const TextIndex& text, int threads);

// The text bytes of one batch of the embed stage (its texts, their vectors counted too): from
// the memory budget (budget / 16, between 64 KiB and 64 MiB), 64 MiB without one. No MPI.
uint64_t embed_batch_bytes(uint64_t budget_bytes);
// What the embed stage holds on a rank of `docs` documents, in batches of `batch_bytes`
// (`raw`: the raw records too, embed.vectors_field): a batch's texts, as read and normalised
// (and raw), its vectors, and per document its survivor entry and row reference, twice while
// they move to block-aligned ranges. Checked against the memory budget before the stage
// starts. No MPI.
uint64_t embed_need_bytes(uint64_t batch_bytes, int64_t docs, bool raw);
// "<dir>/vectors-RRRRR.npy": a rank's vectors file of embed or compact; with `kind`,
// "<dir>/vectors-RRRRR.<kind>.npy" (embed's unfinished rows).
std::string rank_vectors_file(const std::string& dir, int rank, const std::string& kind = "");
// Local: every rank's rank_vectors_file(dir) in the checkpoint folder as one corpus. Throws
// std::runtime_error naming the folder unless it is rows x dim, io::InputError for a file.
std::unique_ptr<io::VectorCorpus> open_rank_vectors(const runtime::StageContext& context,
                                                    const std::string& dir, int ranks,
                                                    int64_t rows, int dim);

class EmbedStage : public runtime::Stage {
 public:
  // `embedder`: made from run_embed_options; `ranks`: the vectors are stored in its ranges;
  // `threads` per rank: for the throughput logged.
  EmbedStage(TextIndex& text, DedupedCorpus& deduped, stages::embed::Embedder& embedder,
             int ranks, int threads)
      : text_(text), deduped_(deduped), embedder_(embedder), ranks_(ranks), threads_(threads) {}
  std::string name() const override { return "embed"; }
  void configure(runtime::StageOptions& options) override;
  // Reads the rank's texts again (read+sketch keeps none) in batches: fit and embed in one read
  // when the embedder embeds while fitting (hashed), else a second read to embed.
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;

 private:
  TextIndex& text_;
  DedupedCorpus& deduped_;
  stages::embed::Embedder& embedder_;
  int ranks_, threads_;
  std::string method_;
  int64_t batch_ = 0;
  bool raw_ = false;  // the embedder reads the raw records (embed.vectors_field)
};

// Opens `embeddings`; sets build.rows (them), range and factory. Throws, agreed: a
// factory or partition.shards that does not fit (ConfigError), too few documents (InputError).
class CheckIndexStage : public runtime::TransientStage {
 public:
  explicit CheckIndexStage(TextIndex& text) : text_(text) {}
  std::string name() const override { return "check-index"; }
  bool skippable() const override { return false; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  TextIndex& text_;
};

class SemanticDedupStage : public runtime::Stage {
 public:
  explicit SemanticDedupStage(TextIndex& text) : text_(text) {}
  std::string name() const override { return "semdedup"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;

 private:
  TextIndex& text_;
  stages::dedup::SemanticOptions options_;
};

// Writes index_rows' files and opens them; sets indexed, build.rows and range. Closes
// `embeddings` — or, when semdedup removed no row on any rank, makes them index_rows as they
// are (no copy).
class CompactStage : public runtime::TransientStage {
 public:
  explicit CompactStage(TextIndex& text) : text_(text) {}
  std::string name() const override { return "compact"; }
  bool skippable() const override { return false; }  // eval reads index_rows too
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  TextIndex& text_;
};

// Recall of the merged index (rank 0) for queries that are a sample of its own vectors
// (evenly spaced index ids, at most eval.max_queries, default 1000), against their exact
// neighbours over index_rows (computed across the ranks). Prints the table on rank 0.
// REQUIRES: merge before it (index.faiss written, or verified).
class EvalStage : public runtime::Stage {
 public:
  EvalStage(TextIndex& text, int threads) : text_(text), threads_(threads) {}
  std::string name() const override { return "eval"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm&, const runtime::StageContext&, const nlohmann::json&) override {}

 private:
  TextIndex& text_;
  int threads_;
  nlohmann::json eval_;  // rank 0: eval.json
};

// Writes the parts under run.tmp/ (run.tmp/ids and run.tmp/duplicates exist) and, with
// run.write_kept, kept/'s shards under run.tmp/kept/ (pipeline/kept_shards.h), then rank 0
// publishes ids.jsonl, duplicates.jsonl, kept/ and embedder.json. `outputs`: what the marker
// lists (and kept/'s shards).
// Frees the vectors first (no stage after it needs them).
class OutputsStage : public runtime::Stage {
 public:
  OutputsStage(TextIndex& text, const DedupedCorpus& deduped,
               std::vector<std::string> outputs)
      : text_(text), deduped_(deduped), outputs_(std::move(outputs)) {}
  std::string name() const override { return "outputs"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm&, const runtime::StageContext&, const nlohmann::json&) override {}

 private:
  TextIndex& text_;
  const DedupedCorpus& deduped_;
  std::vector<std::string> outputs_;
  std::vector<std::string> kept_;  // run.write_kept: kept/'s shards
};

}  // namespace sf::pipeline
