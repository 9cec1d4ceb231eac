// `shardforge run`: read -> exact + near dedup -> embed -> train -> semantic dedup -> add ->
// merge, in one job. See jobs/run.h.
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <malloc.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "io/vector_file.h"
#include "io/text_output.h"
#include "jobs/jobs.h"
#include "jobs/run.h"
#include "jobs/stage_checkpoints.h"
#include "io/array_file.h"
#include "pipeline/checkpoint.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stop.h"
#include "pipeline/run_dir.h"
#include "pipeline/run_manifest.h"
#include "stages/batches.h"
#include "stages/build.h"
#include "stages/dedup/semantic.h"
#include "stages/embed/embedder.h"
#include "stages/eval.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/train.h"
#include "steps/eval_report.h"
#include "steps/index_build.h"
#include "steps/text_dedup.h"

namespace sf::jobs {

namespace dd = stages::dedup;
namespace em = stages::embed;

stages::embed::EmbedOptions run_embed_options(const pipeline::Config& config) {
  em::EmbedOptions o;
  o.method = config.embed.method;
  o.dim = config.embed.dim;
  o.seed = static_cast<uint64_t>(config.embed.seed);
  o.vectors = config.embed.vectors;
  o.vectors_dataset = config.embed.vectors_dataset;
  o.vectors_field = config.embed.vectors_field;
  return o;
}

std::string auto_factory(int64_t rows) {
  // About sqrt(rows) lists, with at least 39 training rows per list (FAISS's minimum).
  int64_t nlist = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(rows))));
  nlist = std::max<int64_t>(1, std::min(nlist, rows / 39));
  return "IVF" + std::to_string(nlist) + ",Flat";
}

namespace {

struct SurvivorRef {  // travels with its vector to the block-aligned ranges
  uint64_t row;
  double keep_score;
};

struct SemanticMsg {  // a semantic verdict, back to the document's reading rank
  uint64_t row, representative;
  double similarity;
};

void l2_normalise(float* v, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += static_cast<double>(v[j]) * v[j];
  if (s <= 0) return;
  const auto inv = static_cast<float>(1.0 / std::sqrt(s));
  for (int j = 0; j < dim; ++j) v[j] *= inv;
}

std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

// Collective. Recall of the merged index (on rank 0) for queries that are a sample of its own
// vectors (evenly spaced index ids, at most eval.max_queries, default 1000), against their
// exact neighbours over all indexed vectors (computed across the ranks). Prints the table on
// rank 0 and returns eval.json's content (rank 0; null elsewhere).
nlohmann::json run_eval(cluster::Comm& comm, const pipeline::Config& config, faiss::Index& index,
                        io::VectorCorpus& rows, cluster::RowRange range, int64_t indexed, int dim,
                        int threads) {
  const int64_t nq = std::min<int64_t>(
      indexed, config.eval.max_queries > 0 ? config.eval.max_queries : 1000);
  std::vector<float> mine;
  cluster::run_local_phase(comm, "eval: queries", [&] {
    for (int64_t q = 0; q < nq; ++q) {
      const int64_t id = q * indexed / nq;
      if (id < range.begin || id >= range.end) continue;
      mine.resize(mine.size() + static_cast<size_t>(dim));
      rows.read(id, 1, mine.data() + mine.size() - static_cast<size_t>(dim));
    }
  });
  std::vector<float> queries;
  {
    const auto* p = reinterpret_cast<const char*>(mine.data());
    for (const auto& part : comm.allgather(cluster::Bytes(p, p + mine.size() * sizeof(float)))) {
      const size_t n = part.size() / sizeof(float);
      queries.resize(queries.size() + n);
      std::memcpy(queries.data() + queries.size() - n, part.data(), part.size());
    }
  }
  const int k = static_cast<int>(std::min<int64_t>(std::max(config.eval.k, 100), indexed));
  const stages::Neighbours truth =
      stages::exact_neighbours(comm, rows, range, queries.data(), nq, k,
                               config.index.metric == "ip", config.input.batch_rows);
  std::vector<stages::EvalPoint> points;
  cluster::run_local_phase(comm, "eval: search", [&] {
    if (comm.rank() != 0) return;
    auto one = cluster::make_serial_comm();  // rank 0 alone holds the merged index
    points = stages::evaluate_index(*one, index, queries.data(), nq, truth, config.eval.k,
                                    config.eval.nprobe);
  });
  if (comm.rank() != 0) return nullptr;
  const nlohmann::json out =
      steps::eval_json(config.eval.k, nq, "exact (queries: indexed documents, evenly spaced ids)",
                       comm.size(), threads, points);
  steps::print_eval_table(out);
  return out;
}

// The checkpoints of `run` after the dedup's (jobs/run.h).
constexpr const char* kEmbedDir = "embed";
constexpr const char* kEmbedderFile = "embedder.json";
constexpr const char* kEmbedderCheckpoint = "embed/embedder.json";  // the embed stage's copy
constexpr const char* kSemanticDir = "semdedup";
using steps::kIndexFile;
constexpr const char* kEvalFile = "eval.json";
constexpr uint32_t kEmbeddingsFormatVersion = 1;
constexpr uint32_t kSemanticFormatVersion = 1;

struct RunFingerprints {
  pipeline::Fingerprint embed, train, semantic, merge, eval, outputs;
};

// Local; stats embed.vectors (throws naming it when it cannot be stat'ed).
// `train` and `index`: the index stages (their keys: pipeline::chain_fingerprints).
RunFingerprints run_fingerprints(const pipeline::Config& config,
                                 const pipeline::Fingerprint& verdicts, int ranks,
                                 pipeline::Stage& train_stage,
                                 const std::vector<pipeline::Stage*>& index) {
  // The vectors are stored in the block-aligned ranges of this rank count.
  pipeline::Fingerprint embed("embed");
  embed.after(verdicts)
      .keys(config, {"embed.method", "embed.dim", "embed.seed", "embed.vectors",
                     "embed.vectors_dataset", "embed.vectors_field"})
      .value("ranks", std::to_string(ranks));
  if (!config.embed.vectors.empty()) embed.input_files(config, {config.embed.vectors});
  const pipeline::Fingerprint train =
      pipeline::chain_fingerprints(config, {&train_stage}, &embed).back();
  pipeline::Fingerprint semantic("semdedup");
  semantic.after(train).keys(config, {"semdedup.eps", "semdedup.report_eps"});
  const pipeline::Fingerprint& indexed = config.run.semdedup ? semantic : train;
  const pipeline::Fingerprint merge = pipeline::chain_fingerprints(config, index, &indexed).back();
  pipeline::Fingerprint eval("eval");
  eval.after(merge).keys(config, {"eval.k", "eval.nprobe", "eval.max_queries"});
  pipeline::Fingerprint outputs("outputs");
  outputs.after(config.run.semdedup ? semantic : embed)
      .keys(config, {"run.dedup", "run.semdedup", "run.index", "run.eval"});
  if (config.run.index) outputs.after(merge);
  if (config.run.eval) outputs.after(eval);
  return {embed, train, semantic, merge, eval, outputs};
}

}  // namespace

int run_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const int threads = pipeline::choose_threads(config, comm);
  const auto progress = pipeline::make_progress_logger(comm.rank());
  pipeline::StageLog log;
  const steps::DedupSetup setup = steps::make_dedup_setup(config, config.run.dedup);
  const io::TextReadOptions& read = setup.read;
  const std::string tmp_dir = dir + "/run.tmp";

  // The embedder first: a bad embed.* is a config error before anything is read. Config
  // checks give the same answer on every rank, so they throw ConfigError (exit 2) directly.
  std::unique_ptr<em::Embedder> embedder;
  std::exception_ptr open_error;  // e.g. an unreadable embed.vectors file
  try {
    embedder = em::make_embedder(run_embed_options(config));
  } catch (const std::invalid_argument& e) {
    throw pipeline::ConfigError(config.source + ": " + e.what());
  } catch (...) {
    open_error = std::current_exception();
  }
  cluster::agree(comm, "open embed.vectors", open_error);
  if (config.run.eval && !config.run.index)
    throw pipeline::ConfigError(config.source + ": run.eval needs run.index (an index to evaluate)");
  if (!config.embed.vectors_field.empty() && read.format != io::TextFormat::kJsonl)
    throw pipeline::ConfigError(config.source + ": embed.vectors_field needs input.format jsonl");
  if (!config.index.factory.empty()) {
    try {
      stages::make_ivf_index(std::max(1, embedder->dim()), config.index.factory,
                             config.index.metric == "ip");
    } catch (const std::invalid_argument& e) {
      throw pipeline::ConfigError(config.source + ": index.factory: " + e.what());
    }
  }

  // The checkpoints (jobs/run.h): what each stage's outputs depend on.
  const pipeline::Checkpoints checkpoints(dir);
  const bool train = config.run.semdedup || config.run.index;
  steps::IndexBuild build;
  steps::TrainStage train_stage(build);
  steps::PartitionStage partition_stage(build);
  steps::AddStage add_stage(build);
  steps::MergeStage merge_stage(build, partition_stage);
  steps::DedupedCorpus deduped;
  deduped.ranks = comm.size();
  deduped.threads = threads;
  steps::ReadSketchStage read_stage(deduped, config.run.dedup);
  steps::ExactStage exact_stage(deduped);
  steps::NearStage near_stage(deduped);
  steps::VerdictsStage verdicts_stage(deduped);
  const std::vector<pipeline::Stage*> dedup_stages = {&read_stage, &exact_stage, &near_stage,
                                                      &verdicts_stage};
  std::optional<RunFingerprints> rfp;
  pipeline::share_input_digests(comm, config);  // input.verify: content reads them once
  cluster::run_local_phase(comm, "open input", [&] {
    const pipeline::Fingerprint verdicts_fp =
        pipeline::chain_fingerprints(config, dedup_stages, nullptr).back();
    rfp = run_fingerprints(config, verdicts_fp, comm.size(), train_stage,
                           {&partition_stage, &add_stage, &merge_stage});
  });
  std::vector<std::string> outputs = {"ids.jsonl", "duplicates.jsonl", kEmbedderFile};
  if (config.run.index) outputs.push_back(kIndexFile);
  if (config.run.index && config.partition.shards > 0) outputs.push_back("plan.json");
  if (config.run.eval) outputs.push_back(kEvalFile);
  if (pipeline::stage_complete(comm, checkpoints, rfp->outputs, config.resume)) {
    if (comm.rank() == 0) spdlog::info("run: the outputs in {} are complete: nothing to do", dir);
    return 0;
  }

  std::vector<std::string> checkpoint_outputs = steps::index_outputs();
  checkpoint_outputs.insert(checkpoint_outputs.end(), {steps::kSketchDir, steps::kVerdictsDir, kEmbedDir,
                                                       kSemanticDir, kEvalFile, "search.json",
                                                       "search.h5"});
  // Results of an earlier run go first: a failed run leaves nothing that looks complete.
  prepare_run_dir(comm, config, checkpoints,
                  {"run.tmp", "run.json", "ids.jsonl", "duplicates.jsonl", kEmbedderFile},
                  checkpoint_outputs,
                  {"run.tmp/ids", "run.tmp/duplicates", steps::kSketchDir, steps::kVerdictsDir, kEmbedDir,
                   kSemanticDir});
  // Whatever way the job ends, no run.tmp/ stays behind (a failure, a stop, a full disk).
  const pipeline::TemporaryFolders temporaries(dir, {"run.tmp"}, comm.rank() == 0);

  // ---- read, exact + near dedup (the corpus is read once; texts stay for the embedder) ----
  const bool embed_done = pipeline::stage_complete(comm, checkpoints, rfp->embed, config.resume);
  stages::dedup::KeptTexts texts;
  texts.normalised = !embed_done;
  texts.raw = !embed_done && !config.embed.vectors_field.empty();
  steps::ReadSketchStage read_texts_stage(deduped, config.run.dedup, texts);
  {
    pipeline::StageRunner dedup_runner(comm, config, checkpoints, log, progress);
    dedup_runner.run({&read_texts_stage, &exact_stage, &near_stage, &verdicts_stage});
  }
  stages::dedup::LocalCorpus& corpus = deduped.corpus;
  const std::vector<int64_t>& begins = deduped.begins;
  const cluster::RowRange range = deduped.range;
  const auto local_docs = static_cast<int64_t>(corpus.keep_score.size());
  std::vector<char> removed(static_cast<size_t>(local_docs), 0);
  for (const auto& v : deduped.verdicts) removed[v.row - range.begin] = 1;

  // ---- embed: fit on every document (idf over the corpus), embed the dedup survivors ----
  // Then the survivors go to block-aligned row ranges: every rank count sees the same rows.
  int dim = 0;
  int64_t embedded = 0, all_bytes = 0;
  double slowest = 0;
  std::vector<float> vectors;
  std::vector<SurvivorRef> refs;
  std::string embedder_text;  // rank 0: embedder.json
  if (embed_done) {
    log.begin("embed");
    cluster::run_local_phase(comm, "embed: read checkpoint", [&] {
      const nlohmann::json info = checkpoints.info(rfp->embed.stage());
      if (!info.is_object())
        throw std::runtime_error(checkpoints.marker_path(rfp->embed.stage()) + ": unreadable");
      dim = info.at("dim").get<int>();
      embedded = info.at("docs").get<int64_t>();
      all_bytes = info.at("text_bytes").get<int64_t>();
      slowest = info.at("seconds").get<double>();
      const std::string file = checkpoints.path(rank_file(kEmbedDir, comm.rank()));
      io::ArrayFileReader in(file, "run-embeddings", kEmbeddingsFormatVersion);
      vectors = in.read<float>("vectors");
      refs = in.read<SurvivorRef>("survivors");
      in.close();
      const cluster::RowRange target = stages::rank_rows(embedded, comm.rank(), comm.size());
      if (static_cast<int64_t>(refs.size()) != target.size() ||
          vectors.size() != refs.size() * static_cast<size_t>(dim))
        throw std::runtime_error(file + ": holds " + std::to_string(refs.size()) +
                                 " rows, this rank's range has " + std::to_string(target.size()));
      if (comm.rank() == 0) {
        const cluster::Bytes bytes = read_bytes(checkpoints.path(kEmbedderCheckpoint));
        embedder_text.assign(bytes.begin(), bytes.end());
      }
    });
    log.end();
    spdlog::info("embed: read back {} documents x {} dims ({})", embedded, dim, config.embed.method);
  } else {
    // One pass over the texts (Embedder::fit_embed): fit on every document (idf over the
    // corpus) and embed the dedup survivors.
    log.begin("embed");
    std::vector<int64_t> surv;  // local docs that survived dedup
    for (int64_t i = 0; i < local_docs; ++i)
      if (!removed[i]) surv.push_back(i);
    em::DocBatch all;
    for (int64_t i = 0; i < local_docs; ++i) {
      all.texts.emplace_back(corpus.texts[i]);
      all.rows.push_back(range.begin + i);
      if (texts.raw) all.raw.emplace_back(corpus.raw[i]);
    }
    uint64_t embed_bytes = 0;
    for (int64_t i : surv) embed_bytes += corpus.texts[i].size();
    const auto t_embed = std::chrono::steady_clock::now();
    vectors = embedder->fit_embed(comm, all, surv, static_cast<int64_t>(config.embed.batch));
    all = em::DocBatch{};
    dim = embedder->dim();
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < static_cast<int64_t>(surv.size()); ++k)
      l2_normalise(vectors.data() + k * dim, dim);
    const double embed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_embed).count();
    std::vector<std::string>().swap(corpus.texts);
    std::vector<std::string>().swap(corpus.raw);
    malloc_trim(0);  // the texts were many small blocks: hand their pages back to the system
    embedded = comm.sum(static_cast<int64_t>(surv.size()));
    log.end();
    // Throughput of fit_embed (the idf pass included) over all ranks: the embedded documents'
    // text bytes / the slowest rank's seconds.
    all_bytes = comm.sum(static_cast<int64_t>(embed_bytes));
    slowest = comm.max(embed_seconds);
    for (int64_t i : surv)
      refs.push_back({static_cast<uint64_t>(range.begin + i), corpus.keep_score[i]});
    const cluster::RowRange target = stages::rank_rows(embedded, comm.rank(), comm.size());
    vectors = cluster::redistribute_rows(comm, vectors, static_cast<size_t>(dim), target);
    refs = cluster::redistribute_rows(comm, refs, 1, target);
    if (comm.rank() == 0) embedder_text = embedder->state().dump() + "\n";
    // The checkpoint: each rank's block of vectors, the fitted embedder (a safe point).
    checkpoint_rank_files(
        comm, checkpoints, rfp->embed, kEmbedDir,
        [&](const std::string& tmp) {
          io::ArrayFileWriter out(tmp, "run-embeddings", kEmbeddingsFormatVersion);
          out.write("vectors", vectors);
          out.write("survivors", refs);
          out.close();
          if (comm.rank() == 0) io::publish_text(checkpoints.path(kEmbedderCheckpoint), embedder_text);
        },
        {{"dim", dim}, {"docs", embedded}, {"text_bytes", all_bytes}, {"seconds", slowest}},
        {kEmbedderCheckpoint});
  }
  const double mb_per_s = slowest > 0 ? static_cast<double>(all_bytes) / 1e6 / slowest : 0.0;
  if (!embed_done)
    spdlog::info("embed: {} documents x {} dims ({}): {:.1f} MB/s, {:.1f} MB/s per core", embedded,
                 dim, config.embed.method, mb_per_s, mb_per_s / (comm.size() * threads));
  const cluster::RowRange target = stages::rank_rows(embedded, comm.rank(), comm.size());

  // ---- train the index (coarse quantizer) on the survivors ----
  const std::string factory =
      config.index.factory.empty() ? auto_factory(embedded) : config.index.factory;
  if (train) cluster::run_local_phase(comm, "check index", [&] {
    auto probe = stages::make_ivf_index(dim, factory, config.index.metric == "ip");
    const auto nlist = static_cast<int64_t>(stages::find_ivf(probe.get())->nlist);
    if (config.run.index) steps::check_partition(config, nlist);
    if (embedded < std::max<int64_t>(nlist, comm.size()))
      throw io::InputError("only " + std::to_string(embedded) +
                           " document(s) left after dedup: too few for index.factory '" +
                           factory + "' (" + std::to_string(nlist) + " lists) on " +
                           std::to_string(comm.size()) + " rank(s)");
    stages::TrainOptions samples;
    samples.train_size = config.index.train_size;
    samples.codebook_sample = config.index.codebook_sample;
    const std::string misfit = stages::training_misfit(*probe, embedded, samples);
    if (!misfit.empty())
      throw pipeline::ConfigError(config.source + ": index.factory '" + factory + "' " + misfit +
                                  "; the embedded corpus has " + std::to_string(embedded) +
                                  " rows x " + std::to_string(dim) + " dims");
  });
  // The index stages (steps/index_build.h) train on the survivors' vectors.
  std::vector<std::unique_ptr<io::VectorFile>> train_files;
  train_files.push_back(io::make_memory_view("embeddings", embedded, dim, target.begin,
                                             vectors.data(), target.size()));
  io::VectorCorpus train_rows(std::move(train_files));
  build.rows = &train_rows;
  build.range = target;
  build.factory = factory;
  std::unique_ptr<faiss::Index>& index = build.index;
  const stages::TrainReport& treport = build.train;
  pipeline::StageRunner runner(comm, config, checkpoints, log, progress);
  runner.after(rfp->embed);
  bool trained = false;
  if (train) {
    runner.run({&train_stage});
    trained = runner.outcome("train") == pipeline::StageOutcome::kLoaded;
  } else {
    log.begin("train");
    log.end();
  }

  // ---- semantic dedup inside the inverted lists ----
  std::vector<SemanticMsg> semantic_local;  // verdicts of the documents held here
  dd::SemanticStats sstats;
  if (config.run.semdedup) {
    log.begin("semdedup");
    if (pipeline::stage_complete(comm, checkpoints, rfp->semantic, config.resume)) {
      cluster::run_local_phase(comm, "semdedup: read checkpoint", [&] {
        const nlohmann::json info = checkpoints.info(rfp->semantic.stage());
        if (!info.is_object())
          throw std::runtime_error(checkpoints.marker_path(rfp->semantic.stage()) + ": unreadable");
        sstats.eps = info.at("eps").get<std::vector<double>>();
        sstats.removed = info.at("removed").get<std::vector<int64_t>>();
        sstats.lists = info.at("lists").get<int64_t>();
        sstats.largest_list = info.at("largest_list").get<int64_t>();
        sstats.pairs = info.at("pairs").get<int64_t>();
        io::ArrayFileReader in(checkpoints.path(rank_file(kSemanticDir, comm.rank())),
                               "run-semantic-verdicts", kSemanticFormatVersion);
        semantic_local = in.read<SemanticMsg>("verdicts");
        in.close();
      });
    } else {
      const auto n = static_cast<int64_t>(refs.size());
      std::vector<faiss::Index::idx_t> lists(static_cast<size_t>(n), 0);
      cluster::run_local_phase(comm, "assign", [&] {
        const float* x = vectors.data();
        std::unique_ptr<const float[]> transformed;
        if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index.get())) {
          const float* y = pt->apply_chain(n, x);
          if (y != x) transformed.reset(y);
          x = y;
        }
        if (n > 0) stages::find_ivf(index.get())->quantizer->assign(n, x, lists.data());
      });
      std::vector<dd::SemanticDoc> docs(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) docs[i] = {refs[i].row, lists[i], refs[i].keep_score};
      dd::SemanticOptions sopt;
      sopt.eps = config.semdedup.eps;
      sopt.report_eps = config.semdedup.report_eps;
      for (const auto& v : dd::semantic_duplicates(comm, docs, vectors.data(), dim, sopt, &sstats))
        semantic_local.push_back({v.row, v.representative, v.similarity});
      checkpoint_rank_files(
          comm, checkpoints, rfp->semantic, kSemanticDir,
          [&](const std::string& tmp) {
            io::ArrayFileWriter out(tmp, "run-semantic-verdicts", kSemanticFormatVersion);
            out.write("verdicts", semantic_local);
            out.close();
          },
          {{"eps", sstats.eps},
           {"removed", sstats.removed},
           {"lists", sstats.lists},
           {"largest_list", sstats.largest_list},
           {"pairs", sstats.pairs}});
    }
    log.end();
  }
  const int64_t semantic_removed = comm.sum(static_cast<int64_t>(semantic_local.size()));

  // ---- add the semantic survivors (index ids: their dense numbers), merge, eval ----
  int64_t indexed = 0, ntotal = 0;
  {
    std::vector<char> gone(refs.size(), 0);
    for (const auto& v : semantic_local) {
      const auto it = std::lower_bound(
          refs.begin(), refs.end(), v.row,
          [](const SurvivorRef& r, uint64_t row) { return r.row < row; });
      gone[static_cast<size_t>(it - refs.begin())] = 1;
    }
    size_t kept_rows = 0;  // the survivors' vectors, compacted in place (no second copy)
    for (size_t i = 0; i < refs.size(); ++i)
      if (!gone[i]) {
        if (kept_rows != i)
          std::copy_n(vectors.begin() + i * dim, dim, vectors.begin() + kept_rows * dim);
        ++kept_rows;
      }
    vectors.resize(kept_rows * dim);
    std::vector<float> kept = std::move(vectors);
    indexed = comm.sum(static_cast<int64_t>(kept.size() / dim));
    if (config.run.index) {
      const cluster::RowRange final_range = stages::rank_rows(indexed, comm.rank(), comm.size());
      kept = cluster::redistribute_rows(comm, kept, static_cast<size_t>(dim), final_range);
      std::vector<std::unique_ptr<io::VectorFile>> files;
      files.push_back(io::make_memory_rows("embeddings", indexed, dim, final_range.begin,
                                           std::move(kept)));
      io::VectorCorpus rows(std::move(files));
      build.rows = &rows;
      build.range = final_range;
      runner.after(config.run.semdedup ? rfp->semantic : rfp->train);
      runner.run({&partition_stage, &add_stage, &merge_stage});
      const bool merged = runner.outcome("merge") == pipeline::StageOutcome::kLoaded;
      ntotal = build.ntotal;
      if (config.run.eval && !pipeline::stage_complete(comm, checkpoints, rfp->eval, config.resume)) {
        log.begin("eval");
        if (merged)
          cluster::run_local_phase(comm, "eval: read index", [&] {
            if (comm.rank() == 0) index = io::read_index_file(checkpoints.path(kIndexFile));
          });
        const nlohmann::json eval_json =
            run_eval(comm, config, *index, rows, final_range, indexed, dim, threads);
        pipeline::run_step(comm, "eval: checkpoint", [&] {
          if (comm.rank() != 0) return;
          io::publish_text(checkpoints.path(kEvalFile), eval_json.dump(2) + "\n");
          checkpoints.mark_complete(rfp->eval, {kEvalFile});
        });
        log.end();
      }
    }
  }

  // ---- semantic verdicts back to the reading ranks ----
  std::vector<SemanticMsg> semantic;  // this rank's documents removed as semantic duplicates
  {
    std::vector<std::vector<SemanticMsg>> out(static_cast<size_t>(comm.size()));
    for (const auto& v : semantic_local) out[stages::dedup::owner_of(begins, v.row)].push_back(v);
    for (auto& part : cluster::exchange(comm, out))
      semantic.insert(semantic.end(), part.begin(), part.end());
    std::sort(semantic.begin(), semantic.end(),
              [](const SemanticMsg& a, const SemanticMsg& b) { return a.row < b.row; });
    for (const auto& v : semantic) removed[v.row - range.begin] = 2;
  }

  // ---- outputs: parts per rank, then published by rank 0 ----
  log.begin("write");
  std::vector<uint64_t> wanted;
  for (const auto& v : deduped.verdicts) {
    wanted.push_back(v.cluster);
    wanted.push_back(v.representative);
  }
  for (const auto& v : semantic) wanted.push_back(v.representative);
  auto id_of_local = [&](uint64_t row) {
    const std::string& id = corpus.ids[row - range.begin];
    return id.empty() ? std::to_string(row) : id;
  };
  const auto ids = stages::dedup::fetch_by_row(comm, begins, wanted, id_of_local);
  int64_t final_local = 0;
  for (int64_t i = 0; i < local_docs; ++i) final_local += removed[i] == 0;
  const int64_t first_id = comm.exscan(final_local);
  cluster::run_local_phase(comm, "write parts", [&] {
    const std::string part = io::part_name(comm.rank(), io::TextFormat::kJsonl);
    io::publish_file(tmp_dir + "/ids/" + part, [&](const std::string& tmp) {
      io::FileWriter out(tmp);
      int64_t next = first_id;
      for (int64_t i = 0; i < local_docs; ++i) {
        if (removed[i]) continue;
        const auto row = static_cast<uint64_t>(range.begin + i);
        out.write("{\"index_id\": " + std::to_string(next++) + ", \"id\": " + id_of_local(row) +
                  ", \"row\": " + std::to_string(row) + ", \"file\": " +
                  json_string(corpus.files[corpus.pieces[corpus.piece_of(i)].file].path) +
                  ", \"line\": " + std::to_string(corpus.file_line(i)) + "}\n");
      }
      out.close();
    });
    io::publish_file(tmp_dir + "/duplicates/" + part, [&](const std::string& tmp) {
      io::FileWriter out(tmp);
      char sim[32];
      size_t s = 0;
      auto write_semantic = [&](const SemanticMsg& v) {
        std::snprintf(sim, sizeof(sim), "%.4f", v.similarity);
        const std::string& rep = ids.at(v.representative);
        out.write("{\"id\": " + id_of_local(v.row) + ", \"cluster\": " + rep +
                  ", \"representative\": " + rep + ", \"reason\": \"semantic\", \"similarity\": " +
                  sim + "}\n");
      };
      for (const auto& v : deduped.verdicts) {
        while (s < semantic.size() && semantic[s].row < v.row) write_semantic(semantic[s++]);
        std::snprintf(sim, sizeof(sim), "%.4f", v.similarity);
        out.write("{\"id\": " + id_of_local(v.row) + ", \"cluster\": " + ids.at(v.cluster) +
                  ", \"representative\": " + ids.at(v.representative) + ", \"reason\": \"" +
                  (v.near ? "near" : "exact") + "\", \"similarity\": " + sim + "}\n");
      }
      while (s < semantic.size()) write_semantic(semantic[s++]);
      out.close();
    });
  });
  log.end();

  nlohmann::json semantic_counts = nlohmann::json::object();
  for (size_t i = 0; i < sstats.eps.size(); ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "%g", sstats.eps[i]);
    semantic_counts[key] = sstats.removed[i];
  }
  const int64_t total_docs = deduped.total_docs;
  nlohmann::json summary = {
      {"docs_in", total_docs},
      {"bad_records", deduped.bad_total},
      {"exact_duplicates", deduped.exact_removed},
      {"near_duplicates", deduped.near_removed},
      {"docs_embedded", embedded},
      {"semantic_duplicates", semantic_removed},
      {"semantic_removed_at_eps", semantic_counts},
      {"semantic_lists", sstats.lists},
      {"semantic_largest_list", sstats.largest_list},
      {"semantic_pairs", sstats.pairs},
      {"docs_kept", total_docs - deduped.exact_removed - deduped.near_removed - semantic_removed},
      {"stages_run",
       {{"dedup", config.run.dedup}, {"semdedup", config.run.semdedup}, {"index", config.run.index},
        {"eval", config.run.eval}}},
      {"embed", {{"method", config.embed.method}, {"dim", dim}, {"seed", config.embed.seed}}},
      {"embed_throughput",
       {{"docs", embedded},
        {"text_bytes", all_bytes},
        {"seconds", slowest},
        {"mb_per_s", mb_per_s},
        {"mb_per_s_per_core", mb_per_s / (comm.size() * threads)},
        {"docs_per_s_per_core", slowest > 0 ? embedded / slowest / (comm.size() * threads) : 0.0}}},
      {"factory", factory},
      {"metric", config.index.metric},
      {"nlist", treport.nlist},
      {"ntotal", ntotal},
      {"ids_format_version", kIdsFormatVersion},
      {"bad_input", deduped.bad_report},
      {"outputs", outputs},
      {"resumed", config.resume},
      {"reused",
       {{"sketch_ranks", deduped.sketches_reused},
        {"verdicts", deduped.verdicts_reused},
        {"embed", embed_done},
        {"train", trained}}}};
  cluster::run_local_phase(comm, "publish", [&] {
    if (comm.rank() != 0) return;
    io::concat_parts(tmp_dir + "/ids", comm.size(), dir + "/ids.jsonl");
    io::concat_parts(tmp_dir + "/duplicates", comm.size(), dir + "/duplicates.jsonl");
    io::publish_text(checkpoints.path(kEmbedderFile), embedder_text);
    pipeline::remove_owned(dir, "run.tmp");
    checkpoints.mark_complete(rfp->outputs, outputs);
  });
  pipeline::write_run_json(comm, dir, "run", threads, log, summary);
  spdlog::info(
      "run: {} documents -> {} exact, {} near, {} semantic duplicates removed -> {} indexed "
      "({}, {} dims); wrote {}/",
      total_docs, deduped.exact_removed, deduped.near_removed, semantic_removed,
      config.run.index ? ntotal : 0, factory, dim, dir);
  return 0;
}

}  // namespace sf::jobs
