// `shardforge build`: train -> add -> merge, each stage checkpointed (pipeline/checkpoint.h).
//
//   train  rank 0 publishes trained.faiss (the trained, empty index), marker "train". A stop
//          request during the coarse k-means is agreed at the next iteration boundary: rank 0
//          saves the k-means state as train-kmeans.sfkm (marker "train-kmeans", same
//          fingerprint parts as "train"), and --resume continues from that iteration
//   partition (partition.shards > 0) the lists are re-sized for partition.workload between
//          the coarse k-means and the add (stages/partition.h); redone on resume, and the add
//          pieces record the lists they were added to
//   add    each rank adds its rows piece by piece (output.piece_rows, cut at global row
//          multiples); each piece is published as pieces/rows-<begin>-<end>.sfsh (the merge
//          wire format) with its own marker "add/rows-<begin>-<end>"
//   merge  the pieces become index.faiss on rank 0 (and, when partitioned, shards/ and
//          plan.json), marker "merge"; the pieces are removed
//
// With --resume, a stage (or piece) whose marker verifies is read back instead of redone.
// Pieces are named by global rows, so a resumed run reuses them even with another rank
// count where the ranges match. A piece holds exactly the lists entries a straight run adds
// for those rows, in id order, so the merged index.faiss is byte-identical.
#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/index_file.h"
#include "jobs/corpus.h"
#include "jobs/jobs.h"
#include "jobs/stage_checkpoints.h"
#include "pipeline/checkpoint.h"
#include "pipeline/run_dir.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stop.h"
#include "stages/build.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/partition.h"
#include "stages/train.h"

namespace sf::jobs {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexFile = "index.faiss";
constexpr const char* kPieceDir = "pieces";  // add checkpoints (not the shards/ layout)

// The config keys the trained index depends on (not threads or batch sizes: the results are
// the same for any; not the rank count: train is identical for any number of ranks).
pipeline::Fingerprint train_fingerprint(const pipeline::Config& config) {
  pipeline::Fingerprint fp("train");
  fp.keys(config, {"input.paths", "input.format", "input.dataset", "index.factory",
                   "index.metric", "index.train_size", "index.kmeans_iterations",
                   "index.codebook_sample", "seed"})
      .input_files(config, config.input.paths);
  return fp;
}

std::string piece_name(cluster::RowRange piece) {
  char name[64];
  std::snprintf(name, sizeof(name), "rows-%012lld-%012lld", static_cast<long long>(piece.begin),
                static_cast<long long>(piece.end));
  return name;
}

// What the inverted lists depend on beyond training: the partition keys and workload.
pipeline::Fingerprint partition_fingerprint(const pipeline::Config& config,
                                            const pipeline::Fingerprint& train) {
  pipeline::Fingerprint fp("partition");
  fp.after(train).keys(config, {"partition.workload", "partition.workload_dataset",
                                "partition.weights", "partition.weights_dataset",
                                "partition.shards", "partition.nprobe", "partition.max_nlist",
                                "partition.tiers", "partition.replicate_hot",
                                "partition.scan_cost"});
  const std::pair<const char*, const std::string*> files[] = {
      {"partition.workload", &config.partition.workload},
      {"partition.weights", &config.partition.weights}};
  for (const auto& [key, path] : files) {
    if (path->empty()) continue;
    try {
      fp.input_files(config, {*path});
    } catch (const std::runtime_error& e) {
      throw io::InputError(std::string(key) + " (" + config.source + "): " + e.what());
    }
  }
  return fp;
}

// A piece holds codes of the lists it was added to: `lists` names the exact trained (and
// re-partitioned) index, so pieces of other lists are never reused.
pipeline::Fingerprint piece_fingerprint(const pipeline::Fingerprint& lists, cluster::RowRange piece) {
  pipeline::Fingerprint fp(std::string("add/") + piece_name(piece));
  fp.after(lists).value("rows", std::to_string(piece.begin) + "-" + std::to_string(piece.end));
  return fp;
}

stages::Workload load_workload(const pipeline::Config& config, int dim) {
  const pipeline::PartitionConfig& p = config.partition;
  auto open = [&](const std::string& path, const std::string& dataset, const char* key) {
    try {
      const io::VectorFormat format = io::detect_vector_format(path);
      return std::make_unique<io::VectorCorpus>(
          std::vector<std::string>{path}, format, format == io::VectorFormat::kHdf5 ? dataset : "");
    } catch (const io::InputError& e) {
      throw io::InputError(std::string(key) + " (" + config.source + "): " + e.what());
    }
  };
  stages::Workload w;
  w.source = p.workload;
  auto file = open(p.workload, p.workload_dataset, "partition.workload");
  if (file->dim() != dim)
    throw io::InputError(p.workload + ": partition.workload has dimension " +
                         std::to_string(file->dim()) + ", the corpus (" +
                         describe_paths(config.input.paths) + ") " + std::to_string(dim));
  w.nq = file->rows();
  if (w.nq == 0) throw io::InputError(p.workload + ": partition.workload has no queries");
  w.queries.resize(static_cast<size_t>(w.nq) * dim);
  file->read(0, w.nq, w.queries.data());
  if (p.weights.empty()) return w;
  auto weights = open(p.weights, p.weights_dataset, "partition.weights");
  if (weights->dim() != 1 || weights->rows() != w.nq)
    throw io::InputError(p.weights + ": partition.weights must be " + std::to_string(w.nq) +
                         " x 1 (one weight per workload query), got " +
                         std::to_string(weights->rows()) + " x " + std::to_string(weights->dim()));
  w.weights.resize(static_cast<size_t>(w.nq));
  weights->read(0, w.nq, w.weights.data());
  double total = 0;
  for (int64_t i = 0; i < w.nq; ++i) {
    if (w.weights[i] < 0)
      throw io::InputError(p.weights + ": row " + std::to_string(i) + ": negative weight");
    total += w.weights[i];
  }
  if (!(total > 0)) throw io::InputError(p.weights + ": the weights sum to 0");
  return w;
}

stages::PartitionOptions partition_options(const pipeline::Config& config) {
  const pipeline::PartitionConfig& p = config.partition;
  stages::PartitionOptions o;
  o.nprobe = p.nprobe;
  o.shards = p.shards;
  o.replicate_hot = p.replicate_hot;
  o.colocate_slack = p.colocate ? p.colocate_slack : -1;
  o.max_nlist = p.max_nlist;
  o.tiers = p.tiers;
  o.scan_cost = p.scan_cost;
  o.kmeans_iterations = config.index.kmeans_iterations;
  o.seed = config.seed;
  o.batch_rows = config.input.batch_rows;
  return o;
}

// Empties the inverted lists of `index` (keeps the trained quantizer and codebooks).
void clear_lists(faiss::Index& index) {
  faiss::IndexIVF* ivf = stages::find_ivf(&index);
  ivf->invlists->reset();
  stages::set_ntotal(index, 0);
}

// One unit of the add stage's loop: the ranks run the same number of steps (a rank with
// fewer does empty ones), so they can agree on errors and stop requests after each.
struct AddStep {
  size_t piece = 0;
  bool reuse = false;              // read the piece's verified file
  cluster::RowRange rows;          // else: add these rows (one batch)
  bool last_of_piece = false;      // then publish the piece
};

struct AddReport {
  int64_t pieces_reused = 0, rows_reused = 0, pieces_added = 0, rows_added = 0;
};

// Collective. Stage `add`: fills `shard` (the trained index) with this rank's rows, piece by
// piece, publishing each piece with its marker. Throws PhaseError or pipeline::Stopped alike
// on every rank.
AddReport add_stage(cluster::Comm& comm, const pipeline::Config& config,
                    const pipeline::Checkpoints& checkpoints, const pipeline::Fingerprint& train_fp,
                    io::VectorCorpus& corpus, cluster::RowRange range, faiss::Index& shard,
                    const stages::ProgressFn& progress) {
  std::vector<cluster::RowRange> pieces;
  std::vector<pipeline::Fingerprint> fps;
  std::vector<AddStep> steps;
  AddReport rep;
  cluster::run_local_phase(comm, "add: plan", [&] {
    pieces = stages::split_rows(range, config.output.piece_rows);
    for (size_t p = 0; p < pieces.size(); ++p) {
      fps.push_back(piece_fingerprint(train_fp, pieces[p]));
      if (config.resume) {
        const std::string why = checkpoints.verify(fps.back());
        if (why.empty()) {
          steps.push_back({p, true, pieces[p], true});
          ++rep.pieces_reused;
          rep.rows_reused += pieces[p].size();
          continue;
        }
        // A piece that was never finished is expected; one that no longer verifies is news.
        if (why != pipeline::Checkpoints::kNoMarker)
          spdlog::warn("{}: redo: {}", fps.back().stage(), why);
      }
      checkpoints.forget(fps.back().stage());
      const std::vector<cluster::RowRange> batches =
          stages::split_rows(pieces[p], config.input.batch_rows);
      for (size_t b = 0; b < batches.size(); ++b)
        steps.push_back({p, false, batches[b], b + 1 == batches.size()});
      ++rep.pieces_added;
      rep.rows_added += pieces[p].size();
    }
    if (!pieces.empty()) fs::create_directories(checkpoints.path(kPieceDir));
  });
  const int64_t rounds = -comm.min(-static_cast<int64_t>(steps.size()));
  const int64_t reused_all = comm.sum(rep.rows_reused);
  if (comm.rank() == 0 && config.resume)
    spdlog::info("add: {} of {} rows are in verified pieces and are read back", reused_all,
                 corpus.rows());

  // A second copy of the trained index takes one piece at a time.
  std::unique_ptr<faiss::Index> piece_index;
  cluster::run_local_phase(comm, "add: prepare",
                           [&] { piece_index = io::deserialize_index(io::serialize_index(shard)); });
  std::vector<float> batch;
  int64_t done = 0;
  const int64_t total = range.size();
  for (int64_t round = 0; round < rounds; ++round) {
    pipeline::run_step(comm, "add", [&] {
      if (round >= static_cast<int64_t>(steps.size())) return;
      const AddStep& step = steps[static_cast<size_t>(round)];
      const std::string rel = std::string(kPieceDir) + "/" + piece_name(pieces[step.piece]) + ".sfsh";
      if (step.reuse) {
        stages::append_shard(shard, read_bytes(checkpoints.path(rel)));
      } else {
        batch.resize(static_cast<size_t>(step.rows.size()) * corpus.dim());
        corpus.read(step.rows.begin, step.rows.size(), batch.data());
        stages::add_rows(*piece_index, step.rows.begin, step.rows.size(), batch.data());
        if (step.last_of_piece) {
          const cluster::Bytes bytes = stages::encode_shard(*piece_index);
          io::publish_bytes(checkpoints.path(rel), bytes.data(), bytes.size());
          checkpoints.mark_complete(fps[step.piece], {rel},
                                    {{"rows", pieces[step.piece].size()}});
          stages::append_shard(shard, bytes);
          clear_lists(*piece_index);
        }
      }
      done += step.rows.size();
      stages::report(progress, "build: add", done, total);
    });
  }
  return rep;
}

}  // namespace

int build_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const pipeline::Checkpoints checkpoints(dir);
  const std::string index_path = checkpoints.path(kIndexFile);
  const int threads = pipeline::choose_threads(config, comm);
  const auto progress = pipeline::make_progress_logger(comm.rank());
  pipeline::StageLog log;

  // The run directory. Without --resume, results and checkpoints of an earlier run are
  // removed first, so a failed build never leaves an index.faiss that looks like its result.
  prepare_run_dir(comm, config, checkpoints, {},
                  {kIndexFile, "eval.json", "run.json", kTrainedFile, "plan.json", "search.json",
                   "search.h5", kKMeansStateFile, kPieceDir, "shards"},
                  {});

  log.begin("open");
  OpenedCorpus opened = open_corpus(comm, config);
  io::VectorCorpus& corpus = *opened.corpus;
  const cluster::RowRange range = opened.range;
  std::optional<pipeline::Fingerprint> train_fp_storage, partition_fp_storage;
  pipeline::share_input_digests(comm, config);  // input.verify: content reads them once
  // A factory string shardforge cannot shard (not IVF, ...) is a bad config whatever the data:
  // exit 2 (README, "Exit codes"). Every rank has the same dimension and throws alike here.
  std::unique_ptr<faiss::Index> probe;
  std::string refused;  // FAISS refused the string for this dimension: it does not fit the data
  try {
    probe = stages::make_ivf_index(corpus.dim(), config.index.factory, config.index.metric == "ip");
  } catch (const stages::UnshardableFactory& e) {
    throw pipeline::ConfigError(config.source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    refused = e.what();
  }
  cluster::run_local_phase(comm, "check index.factory", [&] {
    // Fails alike on every rank, before any collective of the training.
    // A bad value of index.factory names the key and the config file.
    if (probe == nullptr) throw pipeline::ConfigError(config.source + ": " + refused);
    const auto nlist = static_cast<int64_t>(stages::find_ivf(probe.get())->nlist);
    if (corpus.rows() < nlist)
      throw pipeline::ConfigError(config.source + ": index.factory '" + config.index.factory +
                                  "' has " + std::to_string(nlist) + " lists, but the corpus (" +
                                  describe_paths(config.input.paths) + ") has only " +
                                  std::to_string(corpus.rows()) + " rows");
    if (config.index.train_size > 0 && config.index.train_size < nlist)
      throw pipeline::ConfigError(config.source + ": index.train_size " +
                                  std::to_string(config.index.train_size) +
                                  " is smaller than nlist " + std::to_string(nlist));
    stages::TrainOptions samples;
    samples.train_size = config.index.train_size;
    samples.codebook_sample = config.index.codebook_sample;
    const std::string misfit = stages::training_misfit(*probe, corpus.rows(), samples);
    if (!misfit.empty())
      throw pipeline::ConfigError(
          config.source + ": index.factory '" + config.index.factory + "' " + misfit +
          "; the corpus (" + describe_paths(config.input.paths) + ") has " +
          std::to_string(corpus.rows()) + " rows x " + std::to_string(corpus.dim()) + " dims");
    const int64_t bound = config.partition.max_nlist > 0 ? config.partition.max_nlist : nlist;
    if (config.partition.shards > std::min(nlist, bound))
      throw pipeline::ConfigError(config.source + ": partition.shards " +
                                  std::to_string(config.partition.shards) + " is more than the " +
                                  std::to_string(std::min(nlist, bound)) +
                                  " lists of index.factory '" + config.index.factory +
                                  "': each shard owns whole lists");
    if (config.partition.shards == 0 && !config.partition.workload.empty())
      throw pipeline::ConfigError(config.source + ": partition.workload is set but partition.shards "
                                  "is 0: set partition.shards to build the sharded layout");
    train_fp_storage = train_fingerprint(config);
    partition_fp_storage = partition_fingerprint(config, *train_fp_storage);
  });
  const pipeline::Fingerprint& train_fp = *train_fp_storage;
  const pipeline::Fingerprint& partition_fp = *partition_fp_storage;
  pipeline::Fingerprint merge_fp("merge");
  // Co-location changes which shard holds a list: the shard files, written with the merge.
  merge_fp.after(partition_fp).keys(config, {"partition.colocate", "partition.colocate_slack"});
  const bool sharded = config.partition.shards > 0;
  log.end();
  spdlog::info("corpus: {} rows x {} dims in {} file(s); {} rank(s) x {} thread(s); this rank: rows [{}, {})",
               corpus.rows(), corpus.dim(), corpus.num_files(), comm.size(), threads, range.begin,
               range.end);

  // A verified index.faiss ends the build here: nothing before it needs redoing.
  const bool merged = pipeline::stage_complete(comm, checkpoints, merge_fp, config.resume);

  log.begin("train");
  stages::TrainReport treport;
  std::unique_ptr<faiss::Index> index;
  const bool trained = merged || pipeline::stage_complete(comm, checkpoints, train_fp, config.resume);
  if (trained) {
    nlohmann::json info;
    cluster::run_local_phase(comm, "train: read checkpoint", [&] {
      info = checkpoints.info("train");
      // A verified index.faiss does not need the training's record; its numbers are unknown.
      if (info.is_null() && !merged)
        throw std::runtime_error(checkpoints.marker_path("train") + ": unreadable");
    });
    if (!merged) index = load_trained(comm, checkpoints);
    treport = trained_report(info);
  } else {
    stages::TrainOptions topt;
    topt.factory = config.index.factory;
    topt.inner_product = config.index.metric == "ip";
    topt.train_size = config.index.train_size;
    topt.kmeans_iterations = config.index.kmeans_iterations;
    topt.codebook_sample = config.index.codebook_sample;
    topt.seed = config.seed;
    if (comm.rank() == 0) topt.warn = [](const std::string& m) { spdlog::warn("train: {}", m); };
    index = train_checkpointed(comm, checkpoints, train_fp, config.resume, corpus, range, topt,
                               &treport, progress);
  }
  log.end();

  // Partition: the lists re-sized for the workload (a new quantizer, same nlist budget).
  const stages::PartitionOptions popt = partition_options(config);
  stages::RepartitionReport preport;
  std::vector<char> empty_index;  // rank 0: the trained, empty index with the final lists
  std::optional<stages::Workload> workload;  // rank 0
  std::optional<pipeline::Fingerprint> lists_fp_storage;
  if (!merged) {
    if (sharded) {
      log.begin("partition");
      cluster::run_local_phase(comm, "read partition.workload", [&] {
        if (comm.rank() == 0 && !config.partition.workload.empty())
          workload = load_workload(config, corpus.dim());
      });
      preport = stages::repartition_lists(comm, *index, corpus, range,
                                          workload ? &*workload : nullptr, popt, progress);
      if (comm.rank() == 0) empty_index = io::serialize_index(*index);
      log.end();
      spdlog::info("partition: scan cost {:.3g} + {:.3g} s/code ({}); nlist {} -> {}: hot tiers +{} list(s), cold tiers -{}; expected cost {:.3g} -> {:.3g} s/query (estimate){}",
                   preport.scan_cost.a, preport.scan_cost.b, preport.scan_cost.source,
                   preport.nlist_before, preport.nlist_after, preport.splits, preport.merges,
                   preport.cost_before, preport.cost_after,
                   preport.applied || !workload ? "" : ": lists kept");
    }
    // The add pieces name the exact lists they were added to (the same on every rank).
    cluster::run_local_phase(comm, "add: lists", [&] {
      const std::vector<char> trained_bytes = io::serialize_index(*index);
      lists_fp_storage.emplace("lists");
      lists_fp_storage->after(partition_fp)
          .value("index", io::hex64(io::xxh3(trained_bytes.data(), trained_bytes.size())));
    });
  }

  int64_t ntotal = 0, nlist = treport.nlist;
  AddReport areport;
  nlohmann::json plan_summary = nullptr;
  if (merged) {
    cluster::run_local_phase(comm, "merge: read checkpoint", [&] {
      const nlohmann::json info = checkpoints.info("merge");
      ntotal = info.value("ntotal", int64_t{0});
      nlist = info.value("nlist", int64_t{0});
      plan_summary = info.value("partition", nlohmann::json());
    });
  } else {
    log.begin("add");
    areport = add_stage(comm, config, checkpoints, *lists_fp_storage, corpus, range, *index,
                        progress);
    log.end();

    log.begin("merge");
    ntotal = stages::merge_shards(comm, *index);
    log.end();

    log.begin("write");
    std::string written;
    cluster::run_local_phase(comm, "write index", [&] {
      if (comm.rank() != 0) return;
      // An eval.json of an earlier index would read like this one's result.
      pipeline::remove_owned(dir, "eval.json");
      checkpoints.forget("eval");
      io::write_index_file(*index, index_path);
      const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
      nlist = static_cast<int64_t>(ivf->nlist);
      written = fmt::format("wrote {}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes",
                            index_path, ntotal, ivf->nlist, ivf->invlists->imbalance_factor(),
                            fs::file_size(index_path));
    });
    log.end();
    if (comm.rank() == 0) spdlog::info("{}", written);

    std::vector<std::string> outputs = {kIndexFile};
    if (sharded) {
      log.begin("shards");
      cluster::run_local_phase(comm, "write shards", [&] {
        if (comm.rank() != 0) return;
        stages::PartitionPlan plan =
            stages::make_plan(*index, workload ? &*workload : nullptr, popt, preport.scan_cost);
        plan.repartition = preport;
        fs::create_directories(dir + "/shards");
        for (int s = 0; s < plan.shards; ++s) {
          const std::unique_ptr<faiss::Index> shard =
              stages::make_shard_index(*index, empty_index, plan, s);
          io::write_index_file(*shard, dir + "/" + stages::shard_file_name(s));
          outputs.push_back(stages::shard_file_name(s));
        }
        stages::write_plan(plan, dir + "/plan.json");  // last: its presence means the layout is whole
        outputs.push_back("plan.json");
        spdlog::info("wrote {}/plan.json and {} shard(s): balance by {}{}, expected shard cost max/mean {:.3f} (count-balanced {:.3f})",
                     dir, plan.shards, plan.balance, plan.colocated ? " with co-location" : "",
                     plan.max_over_mean_cost, plan.count_balanced_max_over_mean_cost);
        if (plan.shards_per_query > 0)
          spdlog::info("workload queries reach {:.2f} shard(s) each (without co-location: {:.2f})",
                       plan.shards_per_query, plan.lpt_shards_per_query);
        plan_summary = {{"plan", "plan.json"},
                        {"shards", plan.shards},
                        {"nlist", plan.nlist},
                        {"balance", plan.balance},
                        {"max_over_mean_cost", plan.max_over_mean_cost},
                        {"count_balanced_max_over_mean_cost", plan.count_balanced_max_over_mean_cost},
                        {"colocated", plan.colocated},
                        {"shards_per_query", plan.shards_per_query}};
      });
      log.end();
    }
    cluster::run_local_phase(comm, "merge: checkpoint", [&] {
      if (comm.rank() != 0) return;
      checkpoints.mark_complete(merge_fp, outputs,
                                {{"ntotal", ntotal}, {"nlist", nlist}, {"partition", plan_summary}});
      // index.faiss is complete: the pieces have served their purpose.
      pipeline::remove_owned(dir, kPieceDir);
      checkpoints.forget_all("add/");
    });
  }

  nlohmann::json summary = {{"rows", corpus.rows()},
                            {"dim", corpus.dim()},
                            {"factory", config.index.factory},
                            {"metric", config.index.metric},
                            {"nlist", nlist},
                            {"trained_nlist", treport.nlist},
                            {"train_sample_rows", treport.sample_rows},
                            {"codebook_rows", treport.codebook_rows},
                            {"kmeans_objective", treport.objective},
                            {"ntotal", ntotal},
                            {"index", kIndexFile},
                            {"resumed", config.resume},
                            {"train_reused", trained},
                            {"index_reused", merged},
                            {"rows_reused", comm.sum(areport.rows_reused)},
                            {"rows_added", comm.sum(areport.rows_added)},
                            {"partition", plan_summary}};
  pipeline::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::jobs
