// `shardforge build`: open -> train -> (partition) -> add -> merge, the stages of
// pipeline/index_build.h on the runner of runtime/stage_runner.h (checkpoints, --resume, stop
// points, status.json). A verified index.faiss ends the build after opening the corpus.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "runtime/run_prepare.h"
#include "runtime/checkpoint.h"
#include "runtime/run_dir.h"
#include "runtime/stage_runner.h"
#include "pipeline/index_build.h"

namespace sf::commands {

int build_job(cluster::Comm& comm, const runtime::Config& config) {
  const std::string& dir = config.output.dir;
  const runtime::Checkpoints checkpoints(dir);
  const int threads = runtime::choose_threads(config, comm);
  runtime::StageLog log(runtime::resolve_memory_budget(config, comm));

  // The run directory. Without --resume, results and checkpoints of an earlier run are
  // removed first, so a failed build never leaves an index.faiss that looks like its result.
  std::vector<std::string> outputs = pipeline::index_outputs();
  outputs.insert(outputs.end(), {"eval.json", "run.json", "search.json", "search.h5"});
  runtime::prepare_run_dir(comm, config, checkpoints, {}, outputs, {});

  pipeline::IndexBuild build;
  pipeline::OpenVectorsStage open(build);
  pipeline::TuneStage tune(build);
  pipeline::TrainStage train(build);
  pipeline::PartitionStage partition(build);
  pipeline::AddStage add(build);
  pipeline::MergeStage merge(build, partition);
  runtime::StageRunner runner(comm, config, checkpoints, log,
                               runtime::make_progress_logger(comm.rank()));
  // index.factory auto: tune chooses the factory before train.
  std::vector<runtime::Stage*> after_open = {&train, &partition, &add, &merge};
  if (pipeline::auto_index(config)) after_open.insert(after_open.begin(), &tune);
  std::vector<runtime::Stage*> stages = {&open};
  stages.insert(stages.end(), after_open.begin(), after_open.end());
  runner.plan(stages);
  // Opened first: train fingerprints the input files it opened.
  runner.run({&open});
  const io::VectorCorpus& corpus = open.corpus();
  spdlog::info("corpus: {} rows x {} dims in {} file(s); {} rank(s) x {} thread(s); this rank: rows [{}, {})",
               corpus.rows(), corpus.dim(), corpus.num_files(), comm.size(), threads,
               build.range.begin, build.range.end);
  runner.run(after_open);

  using Outcome = runtime::StageOutcome;
  const bool merged = runner.outcome("merge") == Outcome::kLoaded;
  const nlohmann::json summary = {
      {"rows", corpus.rows()},
      {"dim", corpus.dim()},
      {"factory", build.factory},
      {"index_choice", build.tune_summary},
      {"metric", config.index.metric},
      {"nlist", build.nlist},
      {"trained_nlist", build.train.nlist},
      {"train_sample_rows", build.train.sample_rows},
      {"codebook_rows", build.train.codebook_rows},
      {"kmeans_objective", build.train.objective},
      {"ntotal", build.ntotal},
      {"index", pipeline::kIndexFile},
      {"resumed", config.resume},
      {"train_reused", runner.outcome("train") != Outcome::kRun},
      {"index_reused", merged},
      {"rows_reused", comm.sum(build.add.rows_reused)},
      {"rows_added", comm.sum(build.add.rows_added)},
      {"partition", build.plan_summary}};
  runtime::write_run_json(comm, dir, "build", threads, log, summary);
  return 0;
}

}  // namespace sf::commands
