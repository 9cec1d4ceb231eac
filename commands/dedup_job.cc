// `shardforge dedup`: read+sketch -> exact -> near -> verdicts (pipeline/text_dedup.h) -> write
// -> kept (pipeline/kept.h), on the runner of runtime/stage_runner.h. See commands/dedup.h.
#include <spdlog/spdlog.h>

#include "commands/dedup.h"
#include "commands/commands.h"
#include "runtime/run_prepare.h"
#include "runtime/checkpoint.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stage_runner.h"
#include "pipeline/kept.h"
#include "pipeline/text_dedup.h"

namespace sf::commands {

int dedup_job(cluster::Comm& comm, const runtime::Config& config) {
  const std::string& dir = config.output.dir;
  const runtime::Checkpoints checkpoints(dir);
  runtime::StageLog log(runtime::resolve_memory_budget(config, comm));
  pipeline::DedupedCorpus flow;
  flow.ranks = comm.size();
  flow.threads = runtime::choose_threads(config, comm);
  pipeline::KeptOutputs kept;
  pipeline::ReadSketchStage read(flow, /*dedup=*/true);
  pipeline::ExactStage exact(flow);
  pipeline::NearStage near(flow);
  pipeline::VerdictsStage verdicts(flow);
  pipeline::WriteKeptStage write(flow, kept);
  pipeline::PublishKeptStage publish(flow, kept, log);
  const std::vector<runtime::Stage*> stages = {&read, &exact, &near, &verdicts, &write, &publish};
  runtime::StageRunner runner(comm, config, checkpoints, log,
                               runtime::make_progress_logger(comm.rank()));
  runtime::share_input_digests(comm, config);  // input.verify: content reads them once
  if (runner.complete(stages)) {
    if (comm.rank() == 0)
      spdlog::info("dedup: {}/kept/ and duplicates.jsonl are complete: nothing to do", dir);
    return 0;
  }

  // Results of an earlier run go first: a failed run leaves nothing that looks complete.
  std::vector<std::string> folders = {"kept.tmp", "duplicates.tmp", pipeline::kSketchDir,
                                      pipeline::kVerdictsDir};
  if (config.dedup.write_pairs) folders.push_back("pairs.tmp");
  runtime::prepare_run_dir(comm, config, checkpoints,
                  {"kept", "kept.tmp", "duplicates.tmp", "duplicates.jsonl", "dedup.json",
                   "quality.json", "quality_pairs.jsonl", "pairs.jsonl", "pairs.tmp"},
                  {pipeline::kSketchDir, pipeline::kVerdictsDir}, folders);
  // Whatever way the job ends, no *.tmp folder stays behind (a failure, a stop, a full disk).
  const runtime::TemporaryFolders temporaries(dir, {"kept.tmp", "duplicates.tmp", "pairs.tmp"},
                                               comm.rank() == 0);
  runner.run(stages);

  runtime::write_run_json(comm, dir, "dedup", flow.threads, log, kept.summary);
  spdlog::info(
      "dedup: {} -> {} documents ({} exact, {} near duplicates removed; {} clusters, largest {}); "
      "{} -> {} bytes; wrote {}/kept/ and duplicates.jsonl",
      flow.total_docs, kept.docs_out, flow.exact_removed, flow.near_removed, flow.clusters,
      flow.largest_cluster, kept.bytes_in, kept.bytes_out, dir);
  return 0;
}

}  // namespace sf::commands
