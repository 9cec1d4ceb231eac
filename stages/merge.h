// Stage `merge`: the shards' inverted lists become one index.
//
// Ranks own increasing global-id ranges, so appending rank 1's lists after rank 0's, then
// rank 2's, ... keeps every list in global-id order: the merged index is the same bytes for
// any number of ranks. Two ways:
//   write_merged_index  collective: every rank writes its own codes and ids straight into
//                       their place in the one index file (cluster::SharedFile: MPI-IO), read
//                       from its shard in memory or its add pieces on disk (ListSource); no
//                       rank holds more than its lists' source and a bounded buffer. In
//                       FAISS's in-memory or on-disk layout, or one shard file of the
//                       sharded layout
//   merge_shards        the merged index in memory on rank 0 (peak: final index + one shard):
//                       no command uses it; the tests' reference for the files above
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>

#include "cluster/comm.h"
#include "io/checksum.h"
#include "stages/list_source.h"

namespace sf::stages {

// Shard wire format, versioned: a ShardHeader (magic "SFSH", version, nlist, code_size), then
// per list its length (uint64), then per non-empty list its ids (int64) and codes.
constexpr uint32_t kShardFormatVersion = 1;
constexpr char kShardMagic[4] = {'S', 'F', 'S', 'H'};
struct ShardHeader {
  char magic[4];
  uint32_t version;
  uint64_t nlist;
  uint64_t code_size;
};

// Collective. Every rank passes its shard (same trained index, own rows added). On rank 0
// `index` becomes the merged index; other ranks' indexes are emptied. Returns the total
// number of vectors. Throws cluster::PhaseError on every rank if any rank failed.
int64_t merge_shards(cluster::Comm& comm, faiss::Index& index);

// Where one rank's write_merged_index seconds went (wall time). `read`: its lists' bytes read
// from their source into the round buffer (the pieces' preads); `write`: MPI-IO writes (with
// the waits for the other ranks); `sync`: the data flushed to storage; `check`: rank 0's
// read-back of the file.
struct MergeSeconds {
  double read = 0, write = 0, sync = 0, check = 0;
  MergeSeconds& operator+=(const MergeSeconds& o) {
    read += o.read, write += o.write, sync += o.sync, check += o.check;
    return *this;
  }
};

// What write_merged_index wrote (every rank).
struct MergedIndex {
  int64_t ntotal = 0;
  std::vector<int64_t> list_sizes;  // global, per list
  uint64_t bytes = 0;               // the file's size (on disk: both files' sizes)
  MergeSeconds seconds;             // this rank's
  // Rank 0: the file every rank wrote (index.faiss, on disk index.ivfdata) as read back for
  // its check, the XXH3 a completion marker records (no need to read it once more).
  io::FileDigest digest;
};

// Where write_merged_index writes, in which of FAISS's layouts.
struct MergedIndexFiles {
  std::string index;  // index.faiss: the header, and in memory layout the lists too
  // The on-disk layout (FAISS's OnDiskInvertedLists): `ivfdata` gets every list's codes and
  // ids, `index` only the header and "ilod" metadata recording `ivfdata_name` as the lists'
  // file. Empty: the in-memory layout (ArrayInvertedLists, "ilar"), one file.
  std::string ivfdata;
  std::string ivfdata_name;
};

// Collective. Every rank passes the trained index and its lists (`lists`: nlist and code size
// the index's, each list in id order; stages/list_source.h: in memory or the add stage's
// pieces on disk); `path` becomes the merged index's file, byte-identical to
// faiss::write_index of the index merge_shards makes (so stock faiss.read_index loads it).
// Rank 0 writes the header (FAISS's serialization of `trained` with its lists replaced by
// empty ones, ntotal set and the merged list sizes), every rank its codes and ids, read from
// `lists` into a buffer of at most `round_bytes` per round. `trained` and `lists` are unchanged.
// Throws cluster::PhaseError on every rank if any rank failed (the error names `path`).
// REQUIRES: an IVF index whose serialization ends with its ArrayInvertedLists (every IVF index
// shardforge builds; checked, std::logic_error otherwise).
MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& trained, const ListSource& lists,
                               const std::string& path, uint64_t round_bytes);
// The same with the lists of `shard` (ArrayInvertedLists) in memory.
MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& shard, const std::string& path,
                               uint64_t round_bytes);
// The same in either layout, with the lists of `shard` in memory. On disk, index.ivfdata holds
// exactly the lists' part of the in-memory file (each list's codes, then its ids; list after
// list) and index.faiss FAISS's serialization of an OnDiskInvertedLists over it: per list size
// = capacity and the offset, no free slots, `ivfdata_name`, the total size. Rank 0 writes
// index.faiss alone; every rank its entries of index.ivfdata. REQUIRES (on disk): at least one
// vector (FAISS cannot map an empty file; std::invalid_argument on every rank).
MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& shard,
                               const MergedIndexFiles& files, uint64_t round_bytes);

// Every list's global size, and where this rank's entries start inside it.
struct GlobalLists {
  std::vector<int64_t> sizes;
  std::vector<int64_t> before;  // the entries of lower ranks, per list
  int64_t ntotal = 0;
};
// Collective (one allgather of nlist integers per rank).
GlobalLists global_lists(cluster::Comm& comm, const ListSource& lists);

// All of the above: `lists` in either layout, or only the lists `only` (nullptr: all; the
// others empty, as in a shard file of the sharded layout: ntotal is theirs), placed by `global`
// (global_lists of these `lists`).
MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& trained, const ListSource& lists,
                               const GlobalLists& global, const MergedIndexFiles& files,
                               uint64_t round_bytes, const std::vector<int>* only = nullptr);

// The wire format on its own (used by merge_shards and by tests).
cluster::Bytes encode_shard(const faiss::Index& index);
// Appends the lists of an encoded shard to `index`; checks magic, version, nlist, code size.
int64_t append_shard(faiss::Index& index, const cluster::Bytes& shard);

}  // namespace sf::stages
