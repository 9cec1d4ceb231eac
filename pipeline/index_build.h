// The index stages as commands compose them (runtime/stage_runner.h): each reads its options
// from the config (so they are fingerprinted), runs an algorithm of stages/, and saves or
// loads its checkpoint. `build` runs open -> train -> partition -> add -> merge; `run` runs
// train -> partition -> add -> merge on its embedded vectors, between its own stages
// (pipeline/text_index.h: embed, semantic dedup, eval, outputs).
//
// Why a library of its own (pipeline/, between runtime/ and commands/): stages/ holds algorithms
// and knows no config; runtime/ is the runtime every command shares (config, markers, the
// runner) and is tested with fake stages; the stages that read config keys and know the run
// directory's files sit above both, and the commands only list them.
//
//   open       (build) opens input.paths; checks that index.factory fits the corpus
//   tune       (index.factory: auto) the factory and nprobe chosen for index.memory_budget and
//              index.target_recall by measuring candidates on a sample (stages/autotune.h);
//              tune.json and tune-kmeans.sfkm (its coarse k-means, which train continues
//              from), marker "tune"
//   train      trained.faiss, marker "train"; a stop during the coarse k-means saves
//              train-kmeans.sfkm (marker "train-kmeans") and --resume continues from it
//   partition  (partition.shards > 0) the lists re-sized for partition.workload between the
//              coarse k-means and the add (stages/partition.h); no marker: redone on resume,
//              and the add pieces record the lists they were added to
//   add        each rank adds its rows piece by piece (output.piece_rows, cut at global row
//              multiples; it and input.batch_rows lowered to what the memory budget holds,
//              plan_add_from_budget); each piece is published as pieces/rows-<begin>-<end>.sfsh (the
//              merge wire format) with its own marker "add/rows-<begin>-<end>"; a stop is
//              agreed after every batch. Out of core: a rank holds one piece's index and one
//              batch, never its shard; its pieces on disk are its shard
//   merge      the shards become index.faiss (output.layout ondisk: and index.ivfdata), every
//              rank writing its own lists' codes and ids into their place
//              (stages::write_merged_index, MPI-IO), read from its pieces
//              (stages::lists_in_pieces) round by round: no rank holds more than a round's
//              buffer (kMergeRoundBytes) and its pieces' list offsets. The cost: every piece
//              is read once more (usually still in the page cache: it was just written), in
//              slices of one list, so a rank reads from all its pieces in turn; rank 0 reads
//              the written file back once (its CRC-32 check), which also gives the marker its
//              XXH3. Measured (bench/RESULTS.md): the writes, at the disk's rate, are most of
//              it; the piece reads a few per cent. The merge logs its parts. When
//              partitioned, rank 0 makes the plan from the global list sizes and every shard
//              file is written the same way (shards/, then plan.json). Marker "merge"; the
//              pieces are removed
// Pieces are named by global rows, so a resumed run reuses them even with another rank count
// where the ranges match. A piece holds exactly the lists entries a straight run adds for
// those rows, in id order, so the merged index.faiss is byte-identical.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "runtime/stage_runner.h"
#include "stages/autotune.h"
#include "stages/build.h"
#include "stages/merge.h"
#include "stages/partition.h"
#include "stages/train.h"

namespace sf::pipeline {

constexpr const char* kIndexFile = "index.faiss";
constexpr const char* kIndexTmpFile = "index.faiss.tmp";  // the collective merge's, until saved
constexpr const char* kIvfdataFile = "index.ivfdata";  // output.layout ondisk: the lists
constexpr const char* kIvfdataTmpFile = "index.ivfdata.tmp";
constexpr const char* kShardsTmpDir = "shards.tmp";  // the shard files, until saved
// Bytes a rank writes per round of the collective merge (its buffer).
constexpr uint64_t kMergeRoundBytes = uint64_t{64} << 20;
constexpr const char* kTrainedFile = "trained.faiss";
constexpr const char* kKMeansStateFile = "train-kmeans.sfkm";  // a stopped k-means
constexpr const char* kPieceDir = "pieces";  // add checkpoints (not the shards/ layout)
constexpr const char* kTuneFile = "tune.json";  // index.factory auto: the choice, its evidence
constexpr const char* kTuneKMeansFile = "tune-kmeans.sfkm";  // ... and its coarse k-means
constexpr const char* kTuneRotationFile = "tune-opq.faiss";  // ... and an OPQ choice's rotation
// What a build publishes or keeps in its run directory (prepare_run_dir removes them).
inline std::vector<std::string> index_outputs() {
  return {kIndexFile,       kIndexTmpFile, kIvfdataFile, kIvfdataTmpFile, kTrainedFile,
          kKMeansStateFile, kPieceDir,     "plan.json",  "shards",        kShardsTmpDir,
          kTuneFile,        kTuneKMeansFile, kTuneRotationFile};
}

struct AddReport {
  int64_t pieces_reused = 0, rows_reused = 0, pieces_added = 0, rows_added = 0;
};

// What the index stages of one command share, by reference: each stage fills its part.
struct IndexBuild {
  // Set before train: the vectors (this rank's `range` of them), the factory string (run:
  // automatic when index.factory is empty) and the files the vectors are read from directly
  // (build: input.paths, fingerprinted by train; run: none, they are upstream).
  io::VectorCorpus* rows = nullptr;
  cluster::RowRange range;
  std::string factory;
  std::vector<std::string> inputs;

  // tune (index.factory auto): `factory` becomes the chosen one; the coarse k-means it ran
  // (train continues from it: same bytes, no second k-means), the nprobe the index is written
  // with, and tune.json's content (rank 0; null without auto). An OPQ choice: the rotation the
  // tuning trained and measured (train keeps it), and the k-means turned by it.
  std::optional<stages::KMeansState> tuned_kmeans;
  std::vector<float> tuned_rotation;
  int tuned_nprobe = 0;
  nlohmann::json tune_summary = nullptr;

  // train: the trained, empty index (every rank); partition: its lists re-sized. The add
  // leaves it empty (out of core: the rows are in `pieces`).
  std::unique_ptr<faiss::Index> index;
  // add: this rank's piece files (paths), in row order: its shard, on disk.
  std::vector<std::string> pieces;
  stages::TrainReport train;
  stages::RepartitionReport partition;
  std::optional<stages::Workload> workload;  // rank 0, partition.workload
  AddReport add;
  int64_t ntotal = 0, nlist = 0;
  nlohmann::json plan_summary = nullptr;  // merge: the sharded layout's summary (run.json)
};

// build's first stage: input.paths opened on every rank (headers only), the input digests
// shared (input.verify: content), and index.factory / partition.* checked against the corpus:
// a factory shardforge cannot shard is a ConfigError (exit 2), one that does not fit the data
// an agreed error. Fills rows, range, factory and inputs. Not checkpointed, never skipped.
class OpenVectorsStage : public runtime::TransientStage {
 public:
  explicit OpenVectorsStage(IndexBuild& build) : build_(build) {}
  std::string name() const override { return "open"; }
  void configure(runtime::StageOptions& options) override;
  bool skippable() const override { return false; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  const io::VectorCorpus& corpus() const { return *corpus_; }

 private:
  IndexBuild& build_;
  std::vector<std::string> paths_;
  std::unique_ptr<io::VectorCorpus> corpus_;
};

// Local: partition.shards fits `nlist` lists (and partition.max_nlist); partition.workload
// only with partition.shards. Throws ConfigError naming the key.
void check_partition(const runtime::Config& config, int64_t nlist);

class TrainStage : public runtime::Stage {
 public:
  explicit TrainStage(IndexBuild& build) : build_(build) {}
  std::string name() const override { return "train"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void saved(const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;
  void skip(const runtime::StageContext& context, const nlohmann::json& info) override;

 private:
  IndexBuild& build_;
  stages::TrainOptions options_;
};

// index.factory: auto. Collective: trains the coarse quantizer of IVF<auto_nlist(rows)>,Flat
// (stages::train_index), measures the candidate codes on a tuning sample
// (stages::tune_index) and sets build.factory, tuned_kmeans, tuned_nprobe, tune_summary.
// Throws ConfigError alike on every rank when no candidate fits index.memory_budget (naming
// the smallest size that would) or none reaches index.target_recall within it (naming the
// best recall found and its size), or the tuning sample does not fit the memory budget.
class TuneStage : public runtime::Stage {
 public:
  explicit TuneStage(IndexBuild& build) : build_(build) {}
  std::string name() const override { return "tune"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;
  void skip(const runtime::StageContext& context, const nlohmann::json& info) override;

 private:
  IndexBuild& build_;
  stages::TrainOptions train_;
  stages::TuneOptions options_;
};

// True when index.factory is "auto" (the tune stage chooses it).
bool auto_index(const runtime::Config& config);
// The factory the checks before tune use: index.factory, or for auto IVF<auto_nlist(rows)>,Flat
// (the tune stage's coarse quantizer; every candidate has its lists).
std::string checked_factory(const runtime::Config& config, int64_t rows);

// One candidate of tune.json's "candidates" as a line of the log's and `info`'s table: its
// factory and size, then its nprobe, recall, modelled cost and sample QPS, or why it was not
// measured (over the budget; an OPQ candidate that could not pay).
std::string tune_row(const nlohmann::json& candidate, bool chosen);

class PartitionStage : public runtime::TransientStage {
 public:
  explicit PartitionStage(IndexBuild& build) : build_(build) {}
  std::string name() const override { return "partition"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  const stages::PartitionOptions& options() const { return options_; }

 private:
  IndexBuild& build_;
  stages::PartitionOptions options_;
};

// No marker of its own: each piece has one.
class AddStage : public runtime::TransientStage {
 public:
  explicit AddStage(IndexBuild& build) : build_(build) {}
  std::string name() const override { return "add"; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  IndexBuild& build_;
};

class MergeStage : public runtime::Stage {
 public:
  // `partition`: its options make the sharded layout's plan.
  MergeStage(IndexBuild& build, const PartitionStage& partition)
      : build_(build), partition_(partition) {}
  std::string name() const override { return "merge"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void saved(const runtime::StageContext& context) override;
  void load(cluster::Comm& comm, const runtime::StageContext& context,
            const nlohmann::json& info) override;

 private:
  // Collective: the plan (rank 0) and every shard file, into shards.tmp/. Returns this rank's
  // seconds writing them.
  stages::MergeSeconds write_shards(cluster::Comm& comm, const runtime::StageContext& context,
                                    const stages::ListSource& lists,
                                    const stages::GlobalLists& global);

  IndexBuild& build_;
  const PartitionStage& partition_;
  bool ondisk_ = false;  // output.layout
  double colocate_slack_ = -1;
  stages::MergedIndex written_;  // the collective merge's list sizes
  stages::PartitionPlan plan_;   // rank 0, partitioned
  std::vector<io::FileDigest> shard_digests_;  // rank 0, partitioned: each shard file's
};

// The train stage's steps, also for tests. Collective: stages::train_index on build.rows with
// a stop check at every k-means iteration boundary (runtime::stop_requested).
//  - A stop: rank 0 publishes the k-means state as train-kmeans.sfkm with the marker
//    "train-kmeans" (train_fp's parts under that name), then every rank throws
//    runtime::Stopped naming the iteration.
//  - With `resume`, a state whose marker verifies is continued (same result as uninterrupted);
//    one that does not, or is in a format this build does not read, is logged and k-means
//    starts afresh.
// REQUIRES: report != nullptr. Throws as train_index (PhaseError, std::invalid_argument) alike
// on every rank.
std::unique_ptr<faiss::Index> train_checkpointed(cluster::Comm& comm,
                                                 const runtime::Checkpoints& checkpoints,
                                                 const runtime::Fingerprint& train_fp,
                                                 bool resume, io::VectorCorpus& rows,
                                                 cluster::RowRange range,
                                                 stages::TrainOptions options,
                                                 stages::TrainReport* report,
                                                 const stages::ProgressFn& progress);
// Collective, before train does any work: what stages::train_index needs on the rank that holds
// most (stages::train_needs, the largest of the ranks') against `budget` (bytes 0: none).
// Throws runtime::ConfigError on every rank alike naming index.train_size, the budget and the
// need when it does not fit.
void check_train_budget(cluster::Comm& comm, const runtime::Config& config,
                        const io::VectorCorpus& rows, const stages::TrainOptions& options,
                        const runtime::MemoryBudget& budget);
// Collective, before the add (and partition's reads): stages::plan_add from input.batch_rows,
// output.piece_rows, the trained index and `budget`, alike on every rank (threads: the most of
// any rank's). Throws runtime::ConfigError on every rank alike naming the keys, the budget and
// the need when not even a batch and a piece of stages::kBlockRows rows fit.
stages::AddPlan plan_add_from_budget(cluster::Comm& comm, const runtime::Config& config,
                                     const faiss::Index& trained,
                                     const runtime::MemoryBudget& budget);
// The report the train marker recorded (zeros for what `info` lacks).
stages::TrainReport trained_report(const nlohmann::json& info);
// Collective: trained.faiss on every rank (rank 0 reads, broadcasts). Agreed errors.
std::unique_ptr<faiss::Index> load_trained(cluster::Comm& comm,
                                           const runtime::Checkpoints& checkpoints);

}  // namespace sf::pipeline
