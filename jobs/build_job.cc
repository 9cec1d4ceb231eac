#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "jobs/corpus.h"
#include "jobs/jobs.h"
#include "pipeline/run_dir.h"
#include "stages/build.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "stages/train.h"

namespace sf::jobs {
int build_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const std::string index_path = dir + "/index.faiss";
  const int threads = pipeline::choose_threads(config, comm);
  const auto progress = pipeline::make_progress_logger(comm.rank());
  pipeline::StageLog log;

  // The run directory: results of an earlier run are removed first, so a failed build never
  // leaves an index.faiss that looks like its result.
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    pipeline::make_run_dir(dir);
    for (const char* stale : {"index.faiss", "eval.json", "run.json"})
      std::filesystem::remove(dir + "/" + stale);
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });

  log.begin("open");
  OpenedCorpus opened = open_corpus(comm, config);
  io::VectorCorpus& corpus = *opened.corpus;
  const cluster::RowRange range = opened.range;
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
  });
  log.end();
  spdlog::info("corpus: {} rows x {} dims in {} file(s); {} rank(s) x {} thread(s); this rank: rows [{}, {})",
               corpus.rows(), corpus.dim(), corpus.num_files(), comm.size(), threads, range.begin,
               range.end);

  log.begin("train");
  stages::TrainOptions topt;
  topt.factory = config.index.factory;
  topt.inner_product = config.index.metric == "ip";
  topt.train_size = config.index.train_size;
  topt.kmeans_iterations = config.index.kmeans_iterations;
  topt.codebook_sample = config.index.codebook_sample;
  topt.seed = config.seed;
  stages::TrainReport treport;
  std::unique_ptr<faiss::Index> index = stages::train_index(comm, corpus, range, topt, &treport, progress);
  log.end();
  spdlog::info("train: nlist {}, k-means on {} sample rows ({} here), codebooks on {} rows, {} empty clusters split",
               treport.nlist, treport.sample_rows, treport.local_sample_rows, treport.codebook_rows,
               treport.empty_clusters_split);

  log.begin("add");
  cluster::run_local_phase(comm, "add", [&] {
    stages::add_shard(*index, corpus, range, config.input.batch_rows, progress);
  });
  log.end();

  log.begin("merge");
  const int64_t ntotal = stages::merge_shards(comm, *index);
  log.end();

  log.begin("write");
  cluster::run_local_phase(comm, "write index", [&] {
    if (comm.rank() == 0) io::write_index_file(*index, index_path);
  });
  log.end();
  if (comm.rank() == 0) {
    const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
    spdlog::info("wrote {}: {} vectors, nlist {}, list imbalance {:.3f}, {} bytes", index_path,
                 ntotal, ivf->nlist, ivf->invlists->imbalance_factor(),
                 std::filesystem::file_size(index_path));
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
                            {"index", "index.faiss"}};
  pipeline::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::jobs
