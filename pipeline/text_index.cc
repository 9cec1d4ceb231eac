// The stages of `run` around the index stages (pipeline/text_index.h): the factory checked against
// the embedded corpus before train, the semantic survivors compacted before add.
#include <faiss/IndexIVF.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

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
  return config.index.factory.empty() ? auto_factory(rows) : config.index.factory;
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
          {"factory", run_factory(config, embedded)},
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
  // The index stages (pipeline/index_build.h) train on the survivors' vectors.
  const cluster::RowRange target = stages::rank_rows(embedded, comm.rank(), comm.size());
  std::vector<std::unique_ptr<io::VectorFile>> files;
  files.push_back(io::make_memory_view("embeddings", embedded, dim, target.begin,
                                       text_.vectors.data(), target.size()));
  text_.train_rows = std::make_unique<io::VectorCorpus>(std::move(files));
  text_.build.rows = text_.train_rows.get();
  text_.build.range = target;
  text_.build.factory = factory;
}

void CompactStage::run(cluster::Comm& comm, const runtime::StageContext&) {
  std::vector<float>& vectors = text_.vectors;
  const std::vector<SurvivorRef>& refs = text_.refs;
  const auto dim = static_cast<size_t>(text_.dim);
  std::vector<char> gone(refs.size(), 0);
  for (const auto& v : text_.semantic) {
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
  text_.train_rows.reset();  // a view of `vectors`
  std::vector<float> kept = std::move(vectors);
  const int64_t indexed = text_.indexed = comm.sum(static_cast<int64_t>(kept.size() / dim));
  const cluster::RowRange final_range = stages::rank_rows(indexed, comm.rank(), comm.size());
  kept = cluster::redistribute_rows(comm, kept, dim, final_range);
  std::vector<std::unique_ptr<io::VectorFile>> files;
  files.push_back(io::make_memory_rows("embeddings", indexed, text_.dim, final_range.begin,
                                       std::move(kept)));
  text_.index_rows = std::make_unique<io::VectorCorpus>(std::move(files));
  text_.build.rows = text_.index_rows.get();
  text_.build.range = final_range;
}

}  // namespace sf::pipeline
