// The jobs behind `shardforge <command>`. Each is collective: every rank calls it with the
// same config. Each returns the process exit code; errors that all ranks agree on come out
// as cluster::PhaseError.
#pragma once

#include "cluster/comm.h"
#include "pipeline/config.h"

namespace sf::jobs {

// Trains, builds and merges <output.dir>/index.faiss; writes config.yaml and run.json.
int build_job(cluster::Comm& comm, const pipeline::Config& config);
// Searches <output.dir>/index.faiss with eval.queries; writes eval.json, prints the table.
int eval_job(cluster::Comm& comm, const pipeline::Config& config);
// Prints what the run directory holds: index shape and list balance, stage times, recall.
int info_job(cluster::Comm& comm, const pipeline::Config& config);

}  // namespace sf::jobs
