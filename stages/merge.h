// Stage `merge`: the shards' inverted lists become one index on rank 0.
//
// Ranks own increasing global-id ranges, so appending rank 1's lists after rank 0's, then
// rank 2's, ... keeps every list in global-id order: the merged index is the same bytes for
// any number of ranks. Rank 0 receives one shard at a time (peak: final index + one shard).
#pragma once

#include <cstdint>

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

// The wire format on its own (used by merge_shards and by tests).
cluster::Bytes encode_shard(const faiss::Index& index);
// Appends the lists of an encoded shard to `index`; checks magic, version, nlist, code size.
int64_t append_shard(faiss::Index& index, const cluster::Bytes& shard);

}  // namespace sf::stages
