// `shardforge dedup` and `shardforge dedup-quality`, and the config helpers they share.
//
// dedup (collective): every rank reads its share of input.paths (io/text_corpus.h), normalises
// and sketches each record (stages/dedup/text.h, minhash.h), then the ranks find exact
// duplicates and, among the exact survivors, near duplicates (stages/dedup/clusters.h). An
// exact duplicate whose representative is itself in a near cluster joins that cluster (its
// representative and reason become the near ones). Outputs in output.dir:
//   kept/part-RRRRR[.jsonl]  the records kept, in corpus order, byte-identical to the input
//                            (JSONL lines; fortune records each followed by a '%' line)
//   duplicates.jsonl         one line per removed record, in row order:
//                            {"id", "cluster", "representative", "reason", "similarity"}
//                            (ids: the id field's JSON value, else the global row number;
//                            cluster: the id of the cluster's smallest exact-survivor row)
//   pairs.jsonl              with dedup.write_pairs: every pair dedup verified, sorted by the
//                            rows (a, b): {"a", "b", "reason", "similarity"}: an exact duplicate
//                            and its hash group's kept doc (1.0), or a near candidate edge
//                            (a's band bucket's smallest row b) that passed verification
//   dedup.json               counts, bad input per file, parameters, stages per rank
// Published in that order by rename; a run that fails leaves no kept/ (only kept.tmp/).
// The stages: read+sketch, exact, near and verdicts (pipeline/text_dedup.h, shared with `run`),
// then write and kept (pipeline/kept.h). Checkpoints: the sketch of each rank and the verdicts,
// then marker "kept" (kept/, duplicates.jsonl, dedup.json). --resume skips what verifies; a
// stop request (SIGTERM) is honoured after each stage (exit 75).
#pragma once

#include <string>

#include "cluster/comm.h"
#include "runtime/config.h"

namespace sf::commands {

// Collective. See above. Returns 0; agreed failures come out as cluster::PhaseError.
int dedup_job(cluster::Comm& comm, const runtime::Config& config);

// Collective (rank 0 does the work). After `dedup` with dedup.write_pairs: true on the same
// config: exact all-pairs Jaccard of the same shingle sets over the whole corpus against the
// pairs dedup verified (pairs.jsonl) and its clusters (duplicates.jsonl): pair precision,
// pair recall, F1, transitive, representative and document figures at dedup.threshold
// (definitions in stages/dedup/quality.h and in the output). Prints them and writes
// <output.dir>/quality.json (format_version 2) and quality_pairs.jsonl (every pair with
// Jaccard >= 0.3, in one cluster or verified: {"a", "b", "jaccard", "same_cluster",
// "verified"}). For small corpora: memory and time grow with the documents sharing shingles.
int dedup_quality_job(cluster::Comm& comm, const runtime::Config& config);

}  // namespace sf::commands
