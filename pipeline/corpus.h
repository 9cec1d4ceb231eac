// Opening the configured corpus on every rank, with the checks every job needs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "runtime/config.h"

namespace sf::pipeline {

struct OpenedCorpus {
  std::unique_ptr<io::VectorCorpus> corpus;
  cluster::RowRange range;  // this rank's rows: stages::rank_rows (block-aligned)
};

// The input files as one comma-separated list, for messages.
std::string describe_paths(const std::vector<std::string>& paths);

// Collective. Opens input.paths (headers only) on every rank; agreed errors for a bad file,
// an empty corpus, or more ranks than rows.
OpenedCorpus open_corpus(cluster::Comm& comm, const runtime::Config& config);

}  // namespace sf::pipeline
