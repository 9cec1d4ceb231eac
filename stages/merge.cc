#include "stages/merge.h"

#include <faiss/invlists/InvertedLists.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "cluster/bytes.h"
#include "stages/ivf_index.h"

namespace sf::stages {
namespace {

constexpr int kShardTag = 4242;

}  // namespace

cluster::Bytes encode_shard(const faiss::Index& index) {
  const faiss::IndexIVF& ivf = ivf_of(index, "merge");
  const faiss::InvertedLists& lists = *ivf.invlists;
  ShardHeader h{};
  std::memcpy(h.magic, kShardMagic, 4);
  h.version = kShardFormatVersion;
  h.nlist = lists.nlist;
  h.code_size = lists.code_size;
  size_t total = 0;
  for (size_t l = 0; l < lists.nlist; ++l) total += lists.list_size(l);
  cluster::Bytes bytes;
  bytes.reserve(sizeof(h) + lists.nlist * 8 + total * (8 + lists.code_size));
  cluster::ByteWriter out(bytes);
  out.value(h);
  for (size_t l = 0; l < lists.nlist; ++l) out.value<uint64_t>(lists.list_size(l));
  for (size_t l = 0; l < lists.nlist; ++l) {
    const size_t n = lists.list_size(l);
    if (n == 0) continue;
    faiss::InvertedLists::ScopedIds ids(&lists, l);
    faiss::InvertedLists::ScopedCodes codes(&lists, l);
    out.array(ids.get(), n);
    out.array(codes.get(), n * lists.code_size);
  }
  return bytes;
}

int64_t append_shard(faiss::Index& index, const cluster::Bytes& shard) {
  faiss::IndexIVF& ivf = ivf_of(index, "merge");
  faiss::InvertedLists& lists = *ivf.invlists;
  cluster::ByteReader in(shard, "shard message");
  const auto h = in.value<ShardHeader>();
  if (std::memcmp(h.magic, kShardMagic, 4) != 0) throw std::runtime_error("not a shard message");
  if (h.version != kShardFormatVersion)
    throw std::runtime_error("shard format version " + std::to_string(h.version) +
                             ", expected " + std::to_string(kShardFormatVersion));
  if (h.nlist != lists.nlist || h.code_size != lists.code_size)
    throw std::runtime_error("shard has nlist " + std::to_string(h.nlist) + " code size " +
                             std::to_string(h.code_size) + ", index has " +
                             std::to_string(lists.nlist) + " / " + std::to_string(lists.code_size));
  std::vector<uint64_t> sizes(h.nlist);
  in.array(sizes.data(), sizes.size());
  int64_t added = 0;
  for (size_t l = 0; l < h.nlist; ++l) {
    const size_t n = sizes[l];
    if (n == 0) continue;
    const auto* ids =
        reinterpret_cast<const faiss::Index::idx_t*>(in.take(n, sizeof(faiss::Index::idx_t)));
    const auto* codes = reinterpret_cast<const uint8_t*>(in.take(n, h.code_size));
    lists.add_entries(l, n, ids, codes);
    added += static_cast<int64_t>(n);
  }
  set_ntotal(index, ivf.ntotal + added);
  return added;
}

int64_t merge_shards(cluster::Comm& comm, faiss::Index& index) {
  // Rank r > 0 sends its shard when rank 0 asks for it, in rank order. Point to point, not a
  // gather: rank 0 holds one shard in flight, never all of them.
  std::exception_ptr error;
  if (comm.rank() == 0) {
    for (int r = 1; r < comm.size(); ++r) {
      cluster::Bytes go{1};
      comm.send(go, r, kShardTag);
      cluster::Bytes shard = comm.recv(r, kShardTag);
      // Keep draining after a failure (or a peer's empty "I failed" message) so no rank
      // waits forever; agree() below then reports the first failure.
      if (error || shard.empty()) continue;
      try {
        append_shard(index, shard);
      } catch (...) {
        error = std::current_exception();
      }
    }
  } else {
    (void)comm.recv(0, kShardTag);
    try {
      cluster::Bytes shard = encode_shard(index);
      ivf_of(index, "merge").invlists->reset();
      set_ntotal(index, 0);
      comm.send(shard, 0, kShardTag);
    } catch (...) {
      error = std::current_exception();
      comm.send(cluster::Bytes{}, 0, kShardTag);
    }
  }
  cluster::agree(comm, "merge", error);
  return comm.sum(static_cast<int64_t>(comm.rank() == 0 ? index.ntotal : 0));
}

}  // namespace sf::stages
