// `shardforge dedup`: read+sketch -> exact -> near -> verdicts (steps/text_dedup.h) -> write
// -> kept (steps/kept.h), on the runner of pipeline/stage_runner.h. See jobs/dedup.h.
#include <spdlog/spdlog.h>

#include "jobs/dedup.h"
#include "jobs/jobs.h"
#include "pipeline/run_prepare.h"
#include "pipeline/checkpoint.h"
#include "pipeline/run_dir.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stage_runner.h"
#include "steps/kept.h"
#include "steps/text_dedup.h"

namespace sf::jobs {

int dedup_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const pipeline::Checkpoints checkpoints(dir);
  pipeline::StageLog log;
  steps::DedupedCorpus flow;
  flow.ranks = comm.size();
  flow.threads = pipeline::choose_threads(config, comm);
  steps::KeptOutputs kept;
  steps::ReadSketchStage read(flow, /*dedup=*/true);
  steps::ExactStage exact(flow);
  steps::NearStage near(flow);
  steps::VerdictsStage verdicts(flow);
  steps::WriteKeptStage write(flow, kept);
  steps::PublishKeptStage publish(flow, kept, log);
  const std::vector<pipeline::Stage*> stages = {&read, &exact, &near, &verdicts, &write, &publish};
  pipeline::StageRunner runner(comm, config, checkpoints, log,
                               pipeline::make_progress_logger(comm.rank()));
  pipeline::share_input_digests(comm, config);  // input.verify: content reads them once
  if (runner.complete(stages)) {
    if (comm.rank() == 0)
      spdlog::info("dedup: {}/kept/ and duplicates.jsonl are complete: nothing to do", dir);
    return 0;
  }

  // Results of an earlier run go first: a failed run leaves nothing that looks complete.
  std::vector<std::string> folders = {"kept.tmp", "duplicates.tmp", steps::kSketchDir,
                                      steps::kVerdictsDir};
  if (config.dedup.write_pairs) folders.push_back("pairs.tmp");
  pipeline::prepare_run_dir(comm, config, checkpoints,
                  {"kept", "kept.tmp", "duplicates.tmp", "duplicates.jsonl", "dedup.json",
                   "quality.json", "quality_pairs.jsonl", "pairs.jsonl", "pairs.tmp"},
                  {steps::kSketchDir, steps::kVerdictsDir}, folders);
  // Whatever way the job ends, no *.tmp folder stays behind (a failure, a stop, a full disk).
  const pipeline::TemporaryFolders temporaries(dir, {"kept.tmp", "duplicates.tmp", "pairs.tmp"},
                                               comm.rank() == 0);
  runner.run(stages);

  pipeline::write_run_json(comm, dir, "dedup", flow.threads, log, kept.summary);
  spdlog::info(
      "dedup: {} -> {} documents ({} exact, {} near duplicates removed; {} clusters, largest {}); "
      "{} -> {} bytes; wrote {}/kept/ and duplicates.jsonl",
      flow.total_docs, kept.docs_out, flow.exact_removed, flow.near_removed, flow.clusters,
      flow.largest_cluster, kept.bytes_in, kept.bytes_out, dir);
  return 0;
}

}  // namespace sf::jobs
