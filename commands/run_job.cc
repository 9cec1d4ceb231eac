// `shardforge run`: the dedup's stages (pipeline/text_dedup.h: read+sketch -> exact -> near ->
// verdicts), then those of pipeline/text_index.h (embed -> train -> semantic dedup -> add ->
// merge -> eval -> outputs), on one runner, in one job. See commands/run.h.
#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "commands/run.h"
#include "runtime/run_prepare.h"
#include "runtime/checkpoint.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stage_runner.h"
#include "stages/embed/embedder.h"
#include "stages/ivf_index.h"
#include "pipeline/index_build.h"
#include "pipeline/text_dedup.h"
#include "pipeline/text_index.h"

namespace sf::commands {

namespace em = stages::embed;

int run_job(cluster::Comm& comm, const runtime::Config& config) {
  const std::string& dir = config.output.dir;
  const int threads = runtime::choose_threads(config, comm);
  const auto progress = runtime::make_progress_logger(comm.rank());
  runtime::StageLog log(runtime::resolve_memory_budget(config, comm));

  // The embedder first: a bad embed.* is a config error before anything is read. Config
  // checks give the same answer on every rank, so they throw ConfigError (exit 2) directly.
  std::unique_ptr<em::Embedder> embedder;
  std::exception_ptr open_error;  // e.g. an unreadable embed.vectors file
  try {
    embedder = em::make_embedder(pipeline::run_embed_options(config));
  } catch (const std::invalid_argument& e) {
    throw runtime::ConfigError(config.source + ": " + e.what());
  } catch (...) {
    open_error = std::current_exception();
  }
  cluster::agree(comm, "open embed.vectors", open_error);
  if (config.run.eval && !config.run.index)
    throw runtime::ConfigError(config.source + ": run.eval needs run.index (an index to evaluate)");
  if (!config.embed.vectors_field.empty() && pipeline::dedup_text_format(config) != io::TextFormat::kJsonl)
    throw runtime::ConfigError(config.source + ": embed.vectors_field needs input.format jsonl");
  if (!config.index.factory.empty() && !pipeline::auto_index(config)) {
    try {
      stages::make_ivf_index(std::max(1, embedder->dim()), config.index.factory,
                             config.index.metric == "ip");
    } catch (const std::invalid_argument& e) {
      throw runtime::ConfigError(config.source + ": index.factory: " + e.what());
    }
  }

  // The stages after the dedup (pipeline/text_index.h), as run.semdedup, run.index and run.eval
  // say. They read the dedup's results through `deduped`.
  using pipeline::kEmbedderFile, pipeline::kEvalFile, pipeline::kIndexFile;
  std::vector<std::string> outputs = {"ids.jsonl", "duplicates.jsonl", kEmbedderFile};
  if (config.run.index) outputs.push_back(kIndexFile);
  if (config.run.index && config.partition.shards > 0) outputs.push_back("plan.json");
  if (config.run.eval) outputs.push_back(kEvalFile);
  // The dedup's stages (pipeline/text_dedup.h). read+sketch keeps no texts: embed reads its
  // rank's share again, so they are not held through the dedup stages (issue 15).
  pipeline::DedupedCorpus deduped;
  deduped.ranks = comm.size();
  deduped.threads = threads;
  pipeline::ReadSketchStage read_stage(deduped, config.run.dedup);
  pipeline::ExactStage exact(deduped);
  pipeline::NearStage near(deduped);
  pipeline::VerdictsStage verdicts(deduped);
  pipeline::TextIndex text;
  pipeline::EmbedStage embed(text, deduped, *embedder, comm.size(), threads);
  pipeline::CheckIndexStage check_index(text);
  pipeline::TuneStage tune(text.build);
  pipeline::TrainStage train(text.build);
  pipeline::SemanticDedupStage semdedup(text);
  pipeline::CompactStage compact(text);
  pipeline::PartitionStage partition(text.build);
  pipeline::AddStage add(text.build);
  pipeline::MergeStage merge(text.build, partition);
  pipeline::EvalStage eval(text, threads);
  pipeline::OutputsStage write(text, deduped, outputs);
  std::vector<runtime::Stage*> stages = {&read_stage, &exact, &near, &verdicts, &embed};
  if (config.run.semdedup || config.run.index) {
    stages.push_back(&check_index);
    if (pipeline::auto_index(config)) stages.push_back(&tune);  // chooses the factory
    stages.push_back(&train);
  }
  if (config.run.semdedup) stages.push_back(&semdedup);
  if (config.run.index) stages.insert(stages.end(), {&compact, &partition, &add, &merge});
  if (config.run.eval) stages.push_back(&eval);
  stages.push_back(&write);

  // The checkpoints (commands/run.h): each stage's, chained.
  const runtime::Checkpoints checkpoints(dir);
  runtime::StageRunner runner(comm, config, checkpoints, log, progress);
  runtime::share_input_digests(comm, config);  // input.verify: content reads them once
  if (runner.complete(stages)) {
    if (comm.rank() == 0) spdlog::info("run: the outputs in {} are complete: nothing to do", dir);
    return 0;
  }

  using pipeline::kEmbedDir, pipeline::kSemanticDir, pipeline::kSketchDir, pipeline::kVerdictsDir;
  std::vector<std::string> checkpoint_outputs = pipeline::index_outputs();
  checkpoint_outputs.insert(checkpoint_outputs.end(), {kSketchDir, kVerdictsDir, kEmbedDir,
                                                       kSemanticDir, kEvalFile, "search.json",
                                                       "search.h5"});
  // Results of an earlier run go first: a failed run leaves nothing that looks complete.
  std::vector<std::string> replaced = {pipeline::kRunTmpDir, "run.json", "ids.jsonl",
                                       "duplicates.jsonl", kEmbedderFile};
  if (config.run.write_kept) replaced.push_back("kept");
  runtime::prepare_run_dir(comm, config, checkpoints, replaced,
                  checkpoint_outputs,
                  {"run.tmp/ids", "run.tmp/duplicates", pipeline::kCompactDir, pipeline::kEmbedTmpDir, kSketchDir,
                   kVerdictsDir, kEmbedDir, kSemanticDir});
  // Whatever way the job ends, no run.tmp/ stays behind (a failure, a stop, a full disk).
  const runtime::TemporaryFolders temporaries(dir, {pipeline::kRunTmpDir}, comm.rank() == 0);

  runner.run(stages);

  using Outcome = runtime::StageOutcome;
  nlohmann::json summary = pipeline::text_index_summary(comm, config, text, threads);
  const int64_t semantic_removed = summary.at("semantic_duplicates").get<int64_t>();
  const int64_t total_docs = deduped.total_docs;
  summary.update(nlohmann::json{
      {"docs_in", total_docs},
      {"bad_records", deduped.bad_total},
      {"exact_duplicates", deduped.exact_removed},
      {"near_duplicates", deduped.near_removed},
      {"docs_kept", total_docs - deduped.exact_removed - deduped.near_removed - semantic_removed},
      {"stages_run",
       {{"dedup", config.run.dedup}, {"semdedup", config.run.semdedup}, {"index", config.run.index},
        {"eval", config.run.eval}}},
      {"ids_format_version", kIdsFormatVersion},
      {"bad_input", deduped.bad_report},
      {"outputs", outputs},
      {"resumed", config.resume},
      {"reused",
       {{"sketch_ranks", deduped.sketches_reused},
        {"verdicts", deduped.verdicts_reused},
        {"embed", runner.outcome("embed") == Outcome::kLoaded},
        {"train", (config.run.semdedup || config.run.index) &&
                      runner.outcome("train") == Outcome::kLoaded}}}});
  runtime::write_run_json(comm, dir, "run", threads, log, summary);
  spdlog::info(
      "run: {} documents -> {} exact, {} near, {} semantic duplicates removed -> {} indexed "
      "({}, {} dims); wrote {}/",
      total_docs, deduped.exact_removed, deduped.near_removed, semantic_removed,
      config.run.index ? text.build.ntotal : 0, summary.at("factory").get<std::string>(),
      text.dim, dir);
  return 0;
}

}  // namespace sf::commands
