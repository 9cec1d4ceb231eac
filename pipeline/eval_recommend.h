// eval's recommended nprobe (eval.target_recall): found after the eval curve, stored in the
// written index.faiss, and taken by `query` and `search` when the user gives no nprobe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/checksum.h"
#include "runtime/checkpoint.h"
#include "runtime/config.h"
#include "stages/eval.h"

namespace sf::pipeline {

// eval.target_recall, or index.target_recall where it is 0.
double eval_target_recall(const runtime::Config& config);

// Collective (every rank alike; a serial comm where rank 0 alone evaluates). The smallest
// nprobe of `index` whose recall@eval.k reaches eval_target_recall (stages::recommend_nprobe),
// after its eval curve `points`. nullopt, logged on rank 0, when the index is not an IVF or
// recall@eval.k cannot be measured (ground truth or index shorter than eval.k).
std::optional<stages::NprobeChoice> recommend_nprobe(cluster::Comm& comm,
                                                     const runtime::Config& config,
                                                     faiss::Index& index, const float* queries,
                                                     int64_t nq, const stages::Neighbours& truth,
                                                     const std::vector<stages::EvalPoint>& points);

// Rank 0, after eval: <run dir>/index.faiss (which `index` was loaded from) stores `nprobe`
// in place (stages::store_nprobe), and the merge marker records its new size and XXH3 so
// every reader still verifies it. Returns that digest. Throws std::runtime_error naming the file.
io::FileDigest store_recommended_nprobe(const runtime::Checkpoints& checkpoints,
                                        faiss::Index& index, int nprobe);

// The nprobe `query` and `search` take when the user gives none, and where it came from: the
// run's eval.json `recommended.nprobe` (when its eval marker verifies), else tune.json's
// "nprobe" (index.factory: auto), else kDefaultNprobe. Logs why a file it found was not used.
// Local; never throws.
constexpr int kDefaultNprobe = 8;
struct DefaultNprobe {
  int nprobe = kDefaultNprobe;
  std::string source;  // "eval.json (recommended)", "tune.json", "the default"
};
DefaultNprobe default_nprobe(const std::string& run_dir);

}  // namespace sf::pipeline
