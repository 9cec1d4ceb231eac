// `shardforge build`: open -> train -> (partition) -> add -> merge, the stages of
// steps/index_build.h on the runner of pipeline/stage_runner.h (checkpoints, --resume, stop
// points, status.json). A verified index.faiss ends the build after opening the corpus.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "jobs/jobs.h"
#include "pipeline/run_prepare.h"
#include "pipeline/checkpoint.h"
#include "pipeline/run_dir.h"
#include "pipeline/stage_runner.h"
#include "steps/index_build.h"

namespace sf::jobs {

int build_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const pipeline::Checkpoints checkpoints(dir);
  const int threads = pipeline::choose_threads(config, comm);
  pipeline::StageLog log;

  // The run directory. Without --resume, results and checkpoints of an earlier run are
  // removed first, so a failed build never leaves an index.faiss that looks like its result.
  std::vector<std::string> outputs = steps::index_outputs();
  outputs.insert(outputs.end(), {"eval.json", "run.json", "search.json", "search.h5"});
  pipeline::prepare_run_dir(comm, config, checkpoints, {}, outputs, {});

  steps::IndexBuild build;
  steps::OpenVectorsStage open(build);
  steps::TrainStage train(build);
  steps::PartitionStage partition(build);
  steps::AddStage add(build);
  steps::MergeStage merge(build, partition);
  pipeline::StageRunner runner(comm, config, checkpoints, log,
                               pipeline::make_progress_logger(comm.rank()));
  // Opened first: train fingerprints the input files it opened.
  runner.run({&open});
  const io::VectorCorpus& corpus = open.corpus();
  spdlog::info("corpus: {} rows x {} dims in {} file(s); {} rank(s) x {} thread(s); this rank: rows [{}, {})",
               corpus.rows(), corpus.dim(), corpus.num_files(), comm.size(), threads,
               build.range.begin, build.range.end);
  runner.run({&train, &partition, &add, &merge});

  using Outcome = pipeline::StageOutcome;
  const bool merged = runner.outcome("merge") == Outcome::kLoaded;
  const nlohmann::json summary = {
      {"rows", corpus.rows()},
      {"dim", corpus.dim()},
      {"factory", config.index.factory},
      {"metric", config.index.metric},
      {"nlist", build.nlist},
      {"trained_nlist", build.train.nlist},
      {"train_sample_rows", build.train.sample_rows},
      {"codebook_rows", build.train.codebook_rows},
      {"kmeans_objective", build.train.objective},
      {"ntotal", build.ntotal},
      {"index", steps::kIndexFile},
      {"resumed", config.resume},
      {"train_reused", runner.outcome("train") != Outcome::kRun},
      {"index_reused", merged},
      {"rows_reused", comm.sum(build.add.rows_reused)},
      {"rows_added", comm.sum(build.add.rows_added)},
      {"partition", build.plan_summary}};
  pipeline::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::jobs
