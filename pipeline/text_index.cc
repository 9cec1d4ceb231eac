// The stages of `run` around the index stages (pipeline/text_index.h): the factory checked against
// the embedded corpus before train, the semantic survivors compacted before add.
#include <faiss/IndexIVF.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "io/text_corpus.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "stages/train.h"
#include "pipeline/text_index.h"

namespace sf::pipeline {

std::string auto_factory(int64_t rows) {
  // About sqrt(rows) lists, with at least 39 training rows per list (FAISS's minimum).
  int64_t nlist = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(rows))));
  nlist = std::max<int64_t>(1, std::min(nlist, rows / 39));
  return "IVF" + std::to_string(nlist) + ",Flat";
}

std::string run_factory(const runtime::Config& config, int64_t rows) {
  return config.index.factory.empty() ? auto_factory(rows) : checked_factory(config, rows);
}

nlohmann::json text_index_summary(cluster::Comm& comm, const runtime::Config& config,
                                  const TextIndex& text, int threads) {
  const stages::dedup::SemanticStats& sstats = text.semantic_stats;
  nlohmann::json semantic_counts = nlohmann::json::object();
  for (size_t i = 0; i < sstats.eps.size(); ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "%g", sstats.eps[i]);
    semantic_counts[key] = sstats.removed[i];
  }
  const int64_t embedded = text.embedded;
  const double slowest = text.seconds;
  const double mb_per_s =
      slowest > 0 ? static_cast<double>(text.text_bytes) / 1e6 / slowest : 0.0;
  const int cores = comm.size() * threads;
  return {{"docs_embedded", embedded},
          {"semantic_duplicates", comm.sum(static_cast<int64_t>(text.semantic.size()))},
          {"semantic_removed_at_eps", semantic_counts},
          {"semantic_lists", sstats.lists},
          {"semantic_largest_list", sstats.largest_list},
          {"semantic_pairs", sstats.pairs},
          {"embed", {{"method", config.embed.method}, {"dim", text.dim}, {"seed", config.embed.seed}}},
          {"embed_throughput",
           {{"docs", embedded},
            {"text_bytes", text.text_bytes},
            {"seconds", slowest},
            {"mb_per_s", mb_per_s},
            {"mb_per_s_per_core", mb_per_s / cores},
            {"docs_per_s_per_core", slowest > 0 ? embedded / slowest / cores : 0.0}}},
          {"factory", text.build.factory.empty() ? run_factory(config, embedded) : text.build.factory},
          {"index_choice", text.build.tune_summary},
          {"metric", config.index.metric},
          {"nlist", text.build.train.nlist},
          {"ntotal", text.build.ntotal}};
}

void CheckIndexStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  const int64_t embedded = text_.embedded;
  const int dim = text_.dim;
  const std::string factory = run_factory(config, embedded);
  cluster::run_local_phase(comm, "check index", [&] {
    auto probe = stages::make_ivf_index(dim, factory, config.index.metric == "ip");
    const auto nlist = static_cast<int64_t>(stages::find_ivf(probe.get())->nlist);
    if (config.run.index) check_partition(config, nlist);
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
      throw runtime::ConfigError(config.source + ": index.factory '" + factory + "' " + misfit +
                                  "; the embedded corpus has " + std::to_string(embedded) +
                                  " rows x " + std::to_string(dim) + " dims");
  });
  // The index stages (pipeline/index_build.h) train on the survivors' vectors, read from every
  // rank's embed/vectors-R.npy (this rank's block only, in batches).
  cluster::run_local_phase(comm, "embed: open vectors", [&] {
    text_.embeddings = open_rank_vectors(context, kEmbedDir, comm.size(), embedded, dim);
  });
  const cluster::RowRange target = stages::rank_rows(embedded, comm.rank(), comm.size());
  text_.build.rows = text_.embeddings.get();
  text_.build.range = target;
  text_.build.factory = factory;
}

void CompactStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  // The semantic survivors of this rank's block, read in batches of input.batch_rows and
  // written to run.tmp/compact/vectors-R.npy: no rank holds its vectors, and none move
  // between ranks (the files in rank order are the index's rows).
  const std::vector<SurvivorRef>& refs = text_.refs;
  const int dim = text_.dim;
  const auto d = static_cast<size_t>(dim);
  std::vector<char> gone(refs.size(), 0);
  for (const auto& v : text_.semantic) {
    const auto it = std::lower_bound(
        refs.begin(), refs.end(), v.row,
        [](const SurvivorRef& r, uint64_t row) { return r.row < row; });
    gone[static_cast<size_t>(it - refs.begin())] = 1;
  }
  const auto kept_rows =
      static_cast<int64_t>(refs.size()) - std::count(gone.begin(), gone.end(), char{1});
  const cluster::RowRange block = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
  if (comm.sum(static_cast<int64_t>(refs.size()) - kept_rows) == 0) {
    // No semantic duplicate anywhere (or no semdedup): the index's rows are embed's files as
    // they are; copying them would cost their size on disk and a pass over them.
    text_.indexed = text_.embedded;
    text_.index_rows = std::move(text_.embeddings);
    text_.build.rows = text_.index_rows.get();
    text_.build.range = block;
    return;
  }
  cluster::run_local_phase(comm, "compact", [&] {
    const std::string path =
        context.checkpoints.path(rank_vectors_file(kCompactDir, comm.rank()));
    io::NpyF32Writer out(path, kept_rows, dim);
    const int64_t per = std::max<int64_t>(context.config.input.batch_rows, 1);
    std::vector<float> rows;
    for (int64_t lo = 0; lo < block.size(); lo += per) {
      const int64_t n = std::min(per, block.size() - lo);
      rows.resize(static_cast<size_t>(n) * d);
      text_.embeddings->read(block.begin + lo, n, rows.data());
      int64_t kept = 0;  // compacted in place
      for (int64_t k = 0; k < n; ++k)
        if (!gone[static_cast<size_t>(lo + k)]) {
          if (kept != k) std::copy_n(rows.begin() + k * dim, d, rows.begin() + kept * dim);
          ++kept;
        }
      out.append(rows.data(), kept);
    }
    out.close();
  });
  text_.build.rows = nullptr;
  text_.embeddings.reset();
  const int64_t indexed = text_.indexed = comm.sum(kept_rows);  // also: every file is written
  cluster::run_local_phase(comm, "compact: open vectors", [&] {
    text_.index_rows = open_rank_vectors(context, kCompactDir, comm.size(), indexed, dim);
  });
  text_.build.rows = text_.index_rows.get();
  text_.build.range = stages::rank_rows(indexed, comm.rank(), comm.size());
}

std::unique_ptr<io::VectorCorpus> open_rank_vectors(const runtime::StageContext& context,
                                                    const std::string& dir, int ranks,
                                                    int64_t rows, int dim) {
  std::vector<std::string> paths;
  for (int r = 0; r < ranks; ++r)
    paths.push_back(context.checkpoints.path(rank_vectors_file(dir, r)));
  auto corpus = std::make_unique<io::VectorCorpus>(paths, io::VectorFormat::kNpy);
  if (corpus->rows() != rows || (rows > 0 && corpus->dim() != dim))
    throw std::runtime_error(context.checkpoints.path(dir) + ": the vectors files hold " +
                             std::to_string(corpus->rows()) + " x " +
                             std::to_string(corpus->dim()) + ", expected " +
                             std::to_string(rows) + " x " + std::to_string(dim));
  return corpus;
}

}  // namespace sf::pipeline
