// `shardforge build`: train -> add -> merge, each stage checkpointed (pipeline/checkpoint.h).
//
//   train  rank 0 publishes trained.faiss (the trained, empty index), marker "train"
//   add    each rank adds its rows piece by piece (output.piece_rows, cut at global row
//          multiples); each piece is published as shards/rows-<begin>-<end>.sfsh (the merge
//          wire format) with its own marker "add/rows-<begin>-<end>"
//   merge  the shards become index.faiss on rank 0, marker "merge"; the pieces are removed
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
#include <fstream>
#include <iterator>
#include <optional>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "jobs/corpus.h"
#include "jobs/jobs.h"
#include "pipeline/checkpoint.h"
#include "pipeline/run_dir.h"
#include "pipeline/stop.h"
#include "stages/build.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/train.h"

namespace sf::jobs {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTrainedFile = "trained.faiss";
constexpr const char* kIndexFile = "index.faiss";
constexpr const char* kShardDir = "shards";

// The config keys the trained index depends on (not threads or batch sizes: the results are
// the same for any; not the rank count: train is identical for any number of ranks).
pipeline::Fingerprint train_fingerprint(const pipeline::Config& config) {
  pipeline::Fingerprint fp("train");
  fp.keys(config, {"input.paths", "input.format", "input.dataset", "index.factory",
                   "index.metric", "index.train_size", "index.kmeans_iterations",
                   "index.codebook_sample", "seed"})
      .input_files(config.input.paths);
  return fp;
}

std::string piece_name(cluster::RowRange piece) {
  char name[64];
  std::snprintf(name, sizeof(name), "rows-%012lld-%012lld", static_cast<long long>(piece.begin),
                static_cast<long long>(piece.end));
  return name;
}

pipeline::Fingerprint piece_fingerprint(const pipeline::Fingerprint& train, cluster::RowRange piece) {
  pipeline::Fingerprint fp(std::string("add/") + piece_name(piece));
  fp.after(train).value("rows", std::to_string(piece.begin) + "-" + std::to_string(piece.end));
  return fp;
}

cluster::Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  cluster::Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return bytes;
}

// Empties the inverted lists of `index` (keeps the trained quantizer and codebooks).
void clear_lists(faiss::Index& index) {
  faiss::IndexIVF* ivf = stages::find_ivf(&index);
  ivf->invlists->reset();
  ivf->ntotal = 0;
  index.ntotal = 0;
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
    if (!pieces.empty()) fs::create_directories(checkpoints.path(kShardDir));
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
      const std::string rel = std::string(kShardDir) + "/" + piece_name(pieces[step.piece]) + ".sfsh";
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
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    pipeline::make_run_dir(dir);
    if (config.resume) {
      const std::string previous = pipeline::describe_previous_run(dir);
      spdlog::info("resume: {}", previous.empty() ? "no earlier run in " + dir : previous);
    } else {
      for (const char* stale : {kIndexFile, "eval.json", "run.json", kTrainedFile})
        fs::remove(checkpoints.path(stale));
      fs::remove_all(checkpoints.path(kShardDir));
      checkpoints.forget_all();
    }
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });

  log.begin("open");
  OpenedCorpus opened = open_corpus(comm, config);
  io::VectorCorpus& corpus = *opened.corpus;
  const cluster::RowRange range = opened.range;
  std::optional<pipeline::Fingerprint> train_fp_storage;
  cluster::run_local_phase(comm, "check index.factory", [&] {
    // Fails alike on every rank, before any collective of the training.
    // A bad value of index.factory is a config error: name the key and the config file.
    std::unique_ptr<faiss::Index> probe;
    try {
      probe = stages::make_ivf_index(corpus.dim(), config.index.factory,
                                     config.index.metric == "ip");
    } catch (const std::invalid_argument& e) {
      throw pipeline::ConfigError(config.source + ": " + e.what());
    }
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
    train_fp_storage = train_fingerprint(config);
  });
  const pipeline::Fingerprint& train_fp = *train_fp_storage;
  pipeline::Fingerprint merge_fp("merge");
  merge_fp.after(train_fp);
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
    cluster::Bytes bytes;
    cluster::run_local_phase(comm, "train: read checkpoint", [&] {
      info = checkpoints.info("train");
      if (info.is_null()) {
        // A verified index.faiss does not need the training's record; its numbers are unknown.
        if (!merged) throw std::runtime_error(checkpoints.marker_path("train") + ": unreadable");
        info = nlohmann::json::object();
      }
      if (!merged && comm.rank() == 0) bytes = read_bytes(checkpoints.path(kTrainedFile));
    });
    if (!merged) {
      comm.broadcast(bytes, 0);
      cluster::run_local_phase(comm, "train: read checkpoint",
                               [&] { index = io::deserialize_index(bytes); });
    }
    treport.nlist = info.value("nlist", 0);
    treport.sample_rows = info.value("sample_rows", int64_t{0});
    treport.codebook_rows = info.value("codebook_rows", int64_t{0});
    treport.empty_clusters_split = info.value("empty_clusters_split", 0);
    treport.objective = info.value("kmeans_objective", std::vector<double>{});
  } else {
    stages::TrainOptions topt;
    topt.factory = config.index.factory;
    topt.inner_product = config.index.metric == "ip";
    topt.train_size = config.index.train_size;
    topt.kmeans_iterations = config.index.kmeans_iterations;
    topt.codebook_sample = config.index.codebook_sample;
    topt.seed = config.seed;
    index = stages::train_index(comm, corpus, range, topt, &treport, progress);
    spdlog::info("train: nlist {}, k-means on {} sample rows ({} here), codebooks on {} rows, {} empty clusters split",
                 treport.nlist, treport.sample_rows, treport.local_sample_rows,
                 treport.codebook_rows, treport.empty_clusters_split);
    // A safe point: a stop request received while training is honoured once it is saved.
    pipeline::run_step(comm, "train: checkpoint", [&] {
      if (comm.rank() != 0) return;
      io::write_index_file(*index, checkpoints.path(kTrainedFile));
      checkpoints.mark_complete(train_fp, {kTrainedFile},
                                {{"nlist", treport.nlist},
                                 {"sample_rows", treport.sample_rows},
                                 {"codebook_rows", treport.codebook_rows},
                                 {"empty_clusters_split", treport.empty_clusters_split},
                                 {"kmeans_objective", treport.objective}});
    });
  }
  log.end();

  int64_t ntotal = 0;
  AddReport areport;
  if (merged) {
    cluster::run_local_phase(comm, "merge: read checkpoint", [&] {
      ntotal = checkpoints.info("merge").value("ntotal", int64_t{0});
    });
  } else {
    log.begin("add");
    areport = add_stage(comm, config, checkpoints, train_fp, corpus, range, *index, progress);
    log.end();

    log.begin("merge");
    ntotal = stages::merge_shards(comm, *index);
    log.end();

    log.begin("write");
    std::string written;
    cluster::run_local_phase(comm, "write index", [&] {
      if (comm.rank() != 0) return;
      // An eval.json of an earlier index would read like this one's result.
      fs::remove(checkpoints.path("eval.json"));
      checkpoints.forget("eval");
      io::write_index_file(*index, index_path);
      checkpoints.mark_complete(merge_fp, {kIndexFile}, {{"ntotal", ntotal}});
      const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
      written = fmt::format("wrote {}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes",
                            index_path, ntotal, ivf->nlist, ivf->invlists->imbalance_factor(),
                            fs::file_size(index_path));
      // index.faiss is complete: the pieces have served their purpose.
      fs::remove_all(checkpoints.path(kShardDir));
      checkpoints.forget_all("add/");
    });
    log.end();
    if (comm.rank() == 0) spdlog::info("{}", written);
  }

  nlohmann::json summary = {{"rows", corpus.rows()},
                            {"dim", corpus.dim()},
                            {"factory", config.index.factory},
                            {"metric", config.index.metric},
                            {"nlist", treport.nlist},
                            {"train_sample_rows", treport.sample_rows},
                            {"codebook_rows", treport.codebook_rows},
                            {"kmeans_objective", treport.objective},
                            {"ntotal", ntotal},
                            {"index", kIndexFile},
                            {"resumed", config.resume},
                            {"train_reused", trained},
                            {"index_reused", merged},
                            {"rows_reused", comm.sum(areport.rows_reused)},
                            {"rows_added", comm.sum(areport.rows_added)}};
  pipeline::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::jobs
