// kept/ as numbered shards (io/text_shards.h): the collective that has the ranks write their
// segments of one record stream, hand the bytes that continue another rank's frame to it, and
// join each shard's pieces; and the kept documents of a dedup (`dedup`, `run.write_kept`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/text_shards.h"
#include "runtime/config.h"
#include "stages/progress.h"
#include "pipeline/text_dedup.h"

namespace sf::pipeline {

// output.compression and output.max_file_bytes for a corpus of `format`.
io::ShardLayout kept_layout(const runtime::Config& config, io::TextFormat format);

struct WrittenShards {
  std::vector<std::string> names;  // the shard files, in order (every rank)
  uint64_t bytes = 0;              // uncompressed bytes of the whole stream
};

// Collective. The ranks hold consecutive segments of one record stream (rank 0's first).
// `sizes`: this rank's records' bytes, in order; `produce` writes exactly those records
// (begin_record, then their bytes). Writes the shard files into `dir` (created), each by
// temporary name + rename; pieces left by a failure stay in `dir` (a temporary folder).
// Throws cluster::PhaseError on every rank when any rank failed.
WrittenShards write_shards(cluster::Comm& comm, const std::string& dir,
                           const io::ShardLayout& layout, const std::vector<uint32_t>& sizes,
                           const std::function<void(io::ShardSegmentWriter&)>& produce);

// Collective. The documents of `flow` that `removed` (per local doc) does not mark, read again,
// as write_shards writes them: JSONL lines with '\n', fortune records with "%\n". Reports
// "write kept: records" (this rank's documents read again) to `progress`.
WrittenShards write_kept_documents(cluster::Comm& comm, const DedupedCorpus& flow,
                                   const std::vector<char>& removed, const std::string& dir,
                                   const io::ShardLayout& layout,
                                   const stages::ProgressFn& progress);

}  // namespace sf::pipeline
