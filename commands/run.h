// `shardforge run` and `shardforge query`.
//
// run (collective): the whole pipeline from one config, in one job. Every rank reads its share
// of input.paths once (pipeline/text_dedup.h); unless run.dedup is false, exact and near
// duplicates are removed as `dedup` does; the survivors are embedded (embed.*, stages/embed)
// with the embedder fitted on the whole corpus; their vectors (L2-normalised) move to
// block-aligned row ranges of the survivors' dense numbering, so that training and adding see
// the same rows for any rank count; the index (index.factory, or IVF<~sqrt(n)>,Flat when empty)
// is trained; unless run.semdedup is false, each vector is assigned to its inverted list and
// semantic duplicates are removed inside each list (stages/dedup/semantic.h, semdedup.*);
// unless run.index is false, the remaining vectors are added, with their dense numbers as ids,
// and the shards merged; with run.eval, the merged index is searched (rank 0) with a sample of
// its own vectors and scored against their exact neighbours (stages/eval.h). Outputs in
// output.dir, published once all ranks succeeded:
//   index.faiss       the merged index (run.index)
//   ids.jsonl         line k: {"index_id": k, "id": <id field or row>, "row", "file", "line"}
//                     (line: 1-based line of the record's first line in file); version
//                     kIdsFormatVersion, recorded in run.json
//   duplicates.jsonl  every removed document in row order, as `dedup` writes it, with reason
//                     "exact", "near" or "semantic" (cluster = representative for semantic)
//   embedder.json     the fitted embedder's state (stages/embed/embedder.h), for `query`
//   eval.json         run.eval: as `shardforge eval` writes it
//   run.json          "run": per-stage seconds and peak RSS per rank, counts (incl. semantic
//                     removals at every semdedup.report_eps), bad input per file
//   config.yaml       the effective config
//   plan.json, shards/  with partition.shards > 0: the sharded layout, as `build` writes it
//                     (`search` works in a run's directory too)
// The index is the same bytes, and ids.jsonl the same, for any number of ranks.
// The stages after the dedup are pipeline/text_index.h's, on the runner (runtime/stage_runner.h):
// embed -> check-index -> train -> semdedup -> compact -> partition -> add -> merge -> eval ->
// outputs, the list as run.semdedup, run.index and run.eval say.
// Checkpoints (runtime/checkpoint.h; --resume skips what verifies, a stop request is honoured
// after each): the dedup's sketch and verdicts (pipeline/text_dedup.h); "embed" (embed/rank-R.sfar:
// each rank's block of vectors with rows and keep scores, and embed/embedder.json); "train"
// (trained.faiss); "semdedup" (semdedup/rank-R.sfar); partition, add (pieces/, one marker per
// piece, a stop point after every batch) and "merge" (index.faiss) are build's stages
// (pipeline/index_build.h); "eval" (eval.json); "outputs" (all outputs). The resumed outputs are
// byte-identical to a straight run's.
#pragma once

#include <string>

#include "cluster/comm.h"
#include "runtime/config.h"

namespace sf::commands {

constexpr int kIdsFormatVersion = 1;

// Collective. See above. Returns 0; agreed failures come out as cluster::PhaseError.
int run_job(cluster::Comm& comm, const runtime::Config& config);

struct QueryOptions {
  std::string run_dir;
  std::string text;
  int k = 5;
  int nprobe = 0;  // 0: the run's recommended nprobe, else 8 (pipeline::default_nprobe)
  int snippet_chars = 100;  // characters of each neighbour's text printed
  // One JSON object per hit per line: {"rank", "score", "index_id", "id", "file", "line",
  // "text"}, nothing else on stdout.
  bool json = false;
};

// `shardforge query`: one process, no MPI. Loads <run_dir>/config.yaml, embedder.json,
// index.faiss and ids.jsonl; normalises and embeds `text` as the run did; prints the k nearest
// documents (rank, distance, id, file:line, the start of their text read back from the input
// file). Returns 0. Throws std::invalid_argument when `text` is empty or only whitespace,
// std::runtime_error naming a missing or bad run-directory file.
int query_job(const QueryOptions& options);

}  // namespace sf::commands
