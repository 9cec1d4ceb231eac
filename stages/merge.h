// Stage `merge`: the shards' inverted lists become one index.
//
// Ranks own increasing global-id ranges, so appending rank 1's lists after rank 0's, then
// rank 2's, ... keeps every list in global-id order: the merged index is the same bytes for
// any number of ranks. Two ways:
//   write_merged_index  collective: every rank writes its own codes and ids straight into
//                       their place in the one index file (cluster::SharedFile: MPI-IO); no
//                       rank holds more than its shard and a bounded buffer
//   merge_shards        the merged index in memory on rank 0 (peak: final index + one shard),
//                       for what needs it whole (the sharded layout's plan)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>

#include "cluster/comm.h"

namespace sf::stages {

// Shard wire format, versioned: magic "SFSH", version, nlist, code_size, then per list its
// length, then per non-empty list its ids (int64) and codes.
constexpr uint32_t kShardFormatVersion = 1;

// Collective. Every rank passes its shard (same trained index, own rows added). On rank 0
// `index` becomes the merged index; other ranks' indexes are emptied. Returns the total
// number of vectors. Throws cluster::PhaseError on every rank if any rank failed.
int64_t merge_shards(cluster::Comm& comm, faiss::Index& index);

// What write_merged_index wrote (every rank).
struct MergedIndex {
  int64_t ntotal = 0;
  std::vector<int64_t> list_sizes;  // global, per list
  uint64_t bytes = 0;               // the file's size
};

// Collective. Every rank passes its shard (same trained index, own rows added, lists in id
// order); `path` becomes the merged index's file, byte-identical to faiss::write_index of the
// index merge_shards makes (so stock faiss.read_index loads it). Rank 0 writes the header
// (FAISS's serialization of the trained index with ntotal set and the list sizes), every rank
// its codes and ids, in rounds of at most `round_bytes` per rank. The shards are unchanged.
// Throws cluster::PhaseError on every rank if any rank failed (the error names `path`).
// REQUIRES: ArrayInvertedLists whose serialization ends the file (every IVF index shardforge
// builds; checked, std::logic_error otherwise).
MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& shard, const std::string& path,
                               uint64_t round_bytes);

// The wire format on its own (used by merge_shards and by tests).
cluster::Bytes encode_shard(const faiss::Index& index);
// Appends the lists of an encoded shard to `index`; checks magic, version, nlist, code size.
int64_t append_shard(faiss::Index& index, const cluster::Bytes& shard);

}  // namespace sf::stages
