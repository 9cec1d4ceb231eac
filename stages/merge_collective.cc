// write_merged_index (stages/merge.h): the merged index written by every rank at once.
//
// The byte layout is FAISS's (impl/index_write.cpp, write_InvertedLists for
// ArrayInvertedLists, faiss 1.7.3): the index header and quantizer, then "ilar", nlist,
// code_size, the sizes ("full": every list's size, when more than half the lists are
// non-empty; "sprs": (list, size) pairs of the non-empty ones), then each non-empty list's
// codes followed by its ids. We do not go through faiss::write_index for the lists: it needs
// them in one process. The header is FAISS's own serialization of the trained index with
// empty lists, whose 32-byte tail ("ilar", nlist, code_size, "sprs", 0) is replaced by the
// real sizes. The on-disk layout (OnDiskInvertedLists) puts the same list bytes in a file of
// their own from offset 0, and the tail becomes the "ilod" metadata (ondisk_index below).
#include <faiss/IndexIVF.h>
#include <faiss/invlists/InvertedLists.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/index_file.h"
#include "stages/ivf_index.h"
#include "stages/list_source.h"
#include "stages/merge.h"

namespace sf::stages {
namespace {

uint32_t fourcc(const char* s) {
  return static_cast<uint32_t>(s[0]) | static_cast<uint32_t>(s[1]) << 8 |
         static_cast<uint32_t>(s[2]) << 16 | static_cast<uint32_t>(s[3]) << 24;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class T>
void append(std::vector<char>& out, const T& v) {
  const auto* p = reinterpret_cast<const char*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

// Rank 0: FAISS's serialization of the trained index with empty lists and the merged ntotal,
// up to its inverted lists (without their 32-byte tail "ilar", nlist, code_size, "sprs", 0).
// The shard's own lists and ntotal are put back whatever happens.
std::vector<char> index_prefix(faiss::Index& shard, faiss::IndexIVF& ivf, int64_t ntotal) {
  const size_t nlist = ivf.nlist, code_size = ivf.code_size;
  faiss::ArrayInvertedLists empty(nlist, code_size);
  faiss::InvertedLists* own = ivf.invlists;
  const faiss::Index::idx_t own_ntotal = shard.ntotal;
  std::vector<char> bytes;
  ivf.invlists = &empty;
  set_ntotal(shard, ntotal);
  try {
    bytes = io::serialize_index(shard);
  } catch (...) {
    ivf.invlists = own;
    set_ntotal(shard, own_ntotal);
    throw;
  }
  ivf.invlists = own;
  set_ntotal(shard, own_ntotal);

  std::vector<char> tail;
  append(tail, fourcc("ilar"));
  append(tail, nlist);
  append(tail, code_size);
  append(tail, fourcc("sprs"));
  append(tail, size_t{0});
  if (bytes.size() < tail.size() ||
      std::memcmp(bytes.data() + bytes.size() - tail.size(), tail.data(), tail.size()) != 0)
    throw std::logic_error("write_merged_index: the index's serialization does not end with its "
                           "inverted lists");
  bytes.resize(bytes.size() - tail.size());
  return bytes;
}

// Rank 0, in-memory layout: the file's bytes before the first list's codes (FAISS's
// write_InvertedLists for ArrayInvertedLists).
std::vector<char> merged_header(faiss::Index& shard, faiss::IndexIVF& ivf,
                                const std::vector<int64_t>& sizes, int64_t ntotal) {
  const size_t nlist = ivf.nlist, code_size = ivf.code_size;
  std::vector<char> bytes = index_prefix(shard, ivf, ntotal);
  append(bytes, fourcc("ilar"));
  append(bytes, nlist);
  append(bytes, code_size);
  size_t non_empty = 0;
  for (int64_t n : sizes) non_empty += n > 0;
  std::vector<size_t> listed;
  if (non_empty > nlist / 2) {
    append(bytes, fourcc("full"));
    for (int64_t n : sizes) listed.push_back(static_cast<size_t>(n));
  } else {
    append(bytes, fourcc("sprs"));
    for (size_t l = 0; l < nlist; ++l)
      if (sizes[l] > 0) listed.insert(listed.end(), {l, static_cast<size_t>(sizes[l])});
  }
  append(bytes, listed.size());
  const auto* p = reinterpret_cast<const char*>(listed.data());
  bytes.insert(bytes.end(), p, p + listed.size() * sizeof(size_t));
  return bytes;
}

// Rank 0, on-disk layout: the whole index.faiss (OnDiskInvertedListsIOHook::write, faiss
// 1.7.3: "ilod", nlist, code_size, the lists {size, capacity, offset}, the free slots, the
// file name, the total size). The lists lie one after the other, as FAISS's merge_from puts
// them; no free slots (merge_from leaves one spanning the whole file, which a later add_entries
// would take and overwrite the lists with).
std::vector<char> ondisk_index(faiss::Index& shard, faiss::IndexIVF& ivf,
                               const std::vector<int64_t>& sizes, int64_t ntotal,
                               const std::string& ivfdata_name) {
  const size_t nlist = ivf.nlist, code_size = ivf.code_size;
  std::vector<char> bytes = index_prefix(shard, ivf, ntotal);
  append(bytes, fourcc("ilod"));
  append(bytes, nlist);
  append(bytes, code_size);
  append(bytes, nlist);  // the lists: size, capacity, offset (bytes)
  size_t offset = 0;
  for (int64_t n : sizes) {
    const auto entries = static_cast<size_t>(n);
    append(bytes, entries);
    append(bytes, entries);
    append(bytes, offset);
    offset += entries * (code_size + sizeof(faiss::Index::idx_t));
  }
  append(bytes, size_t{0});  // no free slots
  append(bytes, ivfdata_name.size());
  bytes.insert(bytes.end(), ivfdata_name.begin(), ivfdata_name.end());
  append(bytes, offset);  // totsize
  return bytes;
}

struct ChunkCrc {
  uint64_t offset, size;
  uint32_t crc;
};

// Rank 0: `path` holds exactly the chunks of `every` rank, which tile [0, bytes). Returns the
// file's size and XXH3, from the same pass.
io::FileDigest verify_file(const std::string& path, const std::vector<cluster::Bytes>& every,
                 uint64_t bytes) {
  std::vector<ChunkCrc> all;
  for (const cluster::Bytes& part : every) {
    const auto* p = reinterpret_cast<const ChunkCrc*>(part.data());
    all.insert(all.end(), p, p + part.size() / sizeof(ChunkCrc));
  }
  std::sort(all.begin(), all.end(),
            [](const ChunkCrc& a, const ChunkCrc& b) { return a.offset < b.offset; });
  uLong expected = crc32_z(0, nullptr, 0);
  uint64_t end = 0;
  for (const ChunkCrc& c : all) {
    if (c.offset != end) throw std::logic_error("write_merged_index: the chunks do not tile the file");
    expected = crc32_combine64(expected, c.crc, static_cast<z_off64_t>(c.size));
    end += c.size;
  }
  if (end != bytes) throw std::logic_error("write_merged_index: the chunks do not tile the file");
  uLong found = crc32_z(0, nullptr, 0);
  const io::FileDigest digest = io::digest_file(path, [&](const char* data, size_t n) {
    found = crc32_z(found, reinterpret_cast<const Bytef*>(data), static_cast<z_size_t>(n));
  });
  const auto read = static_cast<uint64_t>(digest.bytes);
  if (read != bytes) {
    // The MPI-IO layer lost the write error (a short write taken for a whole one): writing the
    // missing bytes again tells why (the file is removed after this anyway).
    std::string why;
    const int fd = ::open(path.c_str(), O_WRONLY);
    if (fd >= 0) {
      const std::vector<char> zeros(1 << 20, 0);
      for (uint64_t at = read; at < bytes && why.empty();) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - at));
        const ssize_t done = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(at));
        if (done <= 0) why = std::strerror(done < 0 ? errno : ENOSPC);
        at += done > 0 ? static_cast<uint64_t>(done) : 0;
      }
      ::close(fd);
    }
    throw std::runtime_error("cannot write " + path + ": " + std::to_string(read) +
                             " bytes on disk, " + std::to_string(bytes) + " written" +
                             (why.empty() ? "" : " (writing them again: " + why + ")"));
  }
  if (found != expected)
    throw std::runtime_error("cannot write " + path +
                             ": its CRC-32 is not that of the bytes written (a write was lost)");
  return digest;
}

// Bytes [at, at + n) of entries of `width` bytes, read whole by `read(begin, end, out)`: a
// round's edge may cut an entry, which then goes through `scratch`.
template <class Read>
void copy_entry_bytes(uint64_t at, uint64_t n, char* out, uint64_t width,
                      std::vector<char>& scratch, const Read& read) {
  scratch.resize(width);
  uint64_t entry = at / width;
  if (const uint64_t skip = at % width; skip != 0 && n > 0) {
    read(entry, entry + 1, scratch.data());
    const uint64_t m = std::min(width - skip, n);
    std::memcpy(out, scratch.data() + skip, m);
    out += m, n -= m, ++entry;
  }
  if (const uint64_t whole = n / width; whole > 0) {
    read(entry, entry + whole, out);
    out += whole * width, n -= whole * width, entry += whole;
  }
  if (n > 0) {
    read(entry, entry + 1, scratch.data());
    std::memcpy(out, scratch.data(), n);
  }
}

}  // namespace

GlobalLists global_lists(cluster::Comm& comm, const ListSource& lists) {
  const size_t nlist = lists.nlist();
  // The ranks' counts, gathered (nlist x ranks integers).
  std::vector<int64_t> mine(nlist);
  for (size_t l = 0; l < nlist; ++l) mine[l] = static_cast<int64_t>(lists.list_size(l));
  const auto* raw = reinterpret_cast<const char*>(mine.data());
  const std::vector<cluster::Bytes> all =
      comm.allgather(cluster::Bytes(raw, raw + nlist * sizeof(int64_t)));
  GlobalLists out;
  out.sizes.assign(nlist, 0);
  out.before.assign(nlist, 0);
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].size() != nlist * sizeof(int64_t))
      throw std::logic_error("write_merged_index: rank " + std::to_string(r) + " has other lists");
    const auto* counts = reinterpret_cast<const int64_t*>(all[r].data());
    for (size_t l = 0; l < nlist; ++l) {
      if (static_cast<int>(r) < comm.rank()) out.before[l] += counts[l];
      out.sizes[l] += counts[l];
    }
  }
  for (int64_t n : out.sizes) out.ntotal += n;
  return out;
}

namespace {

// The lists of `shard` in memory; an error agreed on every rank.
std::unique_ptr<ListSource> agreed_lists_in_memory(cluster::Comm& comm, faiss::Index& shard) {
  std::unique_ptr<ListSource> lists;
  std::exception_ptr error;
  try {
    lists = lists_in_memory(shard);
  } catch (...) {
    error = std::current_exception();
  }
  cluster::agree(comm, "merge", error);
  return lists;
}

}  // namespace

MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& shard, const std::string& path,
                               uint64_t round_bytes) {
  return write_merged_index(comm, shard, MergedIndexFiles{path, "", ""}, round_bytes);
}

MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& shard,
                               const MergedIndexFiles& files, uint64_t round_bytes) {
  const std::unique_ptr<ListSource> lists = agreed_lists_in_memory(comm, shard);
  return write_merged_index(comm, shard, *lists, global_lists(comm, *lists), files, round_bytes);
}

MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& trained,
                               const ListSource& lists, const std::string& path,
                               uint64_t round_bytes) {
  return write_merged_index(comm, trained, lists, global_lists(comm, lists),
                            MergedIndexFiles{path, "", ""}, round_bytes);
}

MergedIndex write_merged_index(cluster::Comm& comm, faiss::Index& trained,
                               const ListSource& lists, const GlobalLists& global,
                               const MergedIndexFiles& files, uint64_t round_bytes,
                               const std::vector<int>* only) {
  const bool ondisk = !files.ivfdata.empty();
  // The file every rank writes its lists into: index.faiss, or on disk index.ivfdata.
  const std::string& path = ondisk ? files.ivfdata : files.index;
  faiss::IndexIVF* ivf = find_ivf(&trained);
  if (ivf == nullptr) throw std::logic_error("write_merged_index: not an IVF index");
  const size_t nlist = ivf->nlist, code_size = ivf->code_size;
  if (lists.nlist() != nlist || lists.code_size() != code_size || global.sizes.size() != nlist)
    throw std::logic_error("write_merged_index: the lists are not the index's");

  // The lists this file holds (all, or `only`), at their global sizes; the others empty.
  MergedIndex out;
  if (only == nullptr) {
    out.list_sizes = global.sizes;
  } else {
    out.list_sizes.assign(nlist, 0);
    for (int l : *only) out.list_sizes.at(static_cast<size_t>(l)) = global.sizes.at(static_cast<size_t>(l));
  }
  for (int64_t n : out.list_sizes) out.ntotal += n;
  if (ondisk && out.ntotal == 0)
    throw std::invalid_argument(files.index + ": the on-disk layout needs at least one vector "
                                "(FAISS cannot map an empty " + files.ivfdata_name + ")");

  // The header's length (rank 0 makes it; the others need only its length). On disk the
  // header is index.faiss, written by rank 0 alone, and the lists start index.ivfdata.
  std::vector<char> header;
  std::exception_ptr error;
  try {
    if (comm.rank() == 0 && !ondisk) header = merged_header(trained, *ivf, out.list_sizes, out.ntotal);
    if (comm.rank() == 0 && ondisk) {
      const std::vector<char> index =
          ondisk_index(trained, *ivf, out.list_sizes, out.ntotal, files.ivfdata_name);
      io::publish_bytes(files.index, index.data(), index.size());
      out.bytes = index.size();
    }
  } catch (...) {
    error = std::current_exception();
  }
  cluster::agree(comm, "merge: index header", error);
  int64_t header_bytes = static_cast<int64_t>(header.size());
  header_bytes = comm.sum(header_bytes);
  out.bytes = static_cast<uint64_t>(comm.sum(static_cast<int64_t>(out.bytes)));

  // Each chunk's CRC-32, computed as its bytes are produced (in order, each byte once).
  std::vector<cluster::FileChunk> chunks;
  std::vector<uLong> crcs;
  std::vector<char> scratch;  // an entry cut by a round's edge
  const auto add_chunk = [&](uint64_t offset, uint64_t size,
                             std::function<void(uint64_t, uint64_t, char*)> fill) {
    const size_t i = chunks.size();
    crcs.push_back(crc32_z(0, nullptr, 0));
    chunks.push_back({offset, size, [&crcs, &out, i, fill = std::move(fill)](
                                        uint64_t at, uint64_t n, char* dest) {
                        const auto began = std::chrono::steady_clock::now();
                        fill(at, n, dest);
                        out.seconds.read += seconds_since(began);
                        crcs[i] = crc32_z(crcs[i], reinterpret_cast<const Bytef*>(dest),
                                          static_cast<z_size_t>(n));
                      }});
  };
  if (!header.empty())
    add_chunk(0, header.size(), [&header](uint64_t at, uint64_t n, char* dest) {
      std::memcpy(dest, header.data() + at, n);
    });
  uint64_t start = static_cast<uint64_t>(header_bytes);  // of list l's codes
  for (size_t l = 0; l < nlist; ++l) {
    const auto n = static_cast<uint64_t>(out.list_sizes[l]);
    const auto k = static_cast<uint64_t>(lists.list_size(l));
    if (n > 0 && k > 0) {
      const auto at = static_cast<uint64_t>(global.before[l]);
      add_chunk(start + at * code_size, k * code_size,
                [&lists, &scratch, l, code_size](uint64_t a, uint64_t m, char* dest) {
                  copy_entry_bytes(a, m, dest, code_size, scratch,
                                   [&](uint64_t b, uint64_t e, char* o) {
                                     lists.read_codes(l, b, e, reinterpret_cast<uint8_t*>(o));
                                   });
                });
      add_chunk(start + n * code_size + at * sizeof(faiss::Index::idx_t),
                k * sizeof(faiss::Index::idx_t),
                [&lists, &scratch, l](uint64_t a, uint64_t m, char* dest) {
                  copy_entry_bytes(a, m, dest, sizeof(int64_t), scratch,
                                   [&](uint64_t b, uint64_t e, char* o) {
                                     lists.read_ids(l, b, e, reinterpret_cast<int64_t*>(o));
                                   });
                });
    }
    start += n * (code_size + sizeof(faiss::Index::idx_t));
  }
  const uint64_t file_bytes = start;
  out.bytes += file_bytes;

  std::unique_ptr<cluster::SharedFile> file;
  try {
    file = comm.create_shared_file(path);
  } catch (...) {
    error = std::current_exception();
  }
  cluster::agree(comm, "merge", error);
  auto began = std::chrono::steady_clock::now();
  try {
    file->write_all(chunks, round_bytes);
  } catch (...) {
    error = std::current_exception();
  }
  out.seconds.write = seconds_since(began) - out.seconds.read;
  began = std::chrono::steady_clock::now();
  try {
    file->close();
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  out.seconds.sync = seconds_since(began);
  // A check that does not trust the MPI-IO layer to report every failed write (Open MPI's
  // OMPIO did not; see cluster/comm_mpi.cc): the file's CRC-32, read back by rank 0, must be
  // that of the bytes the ranks wrote (their chunks' CRCs combined in file order).
  std::vector<ChunkCrc> written;
  for (size_t i = 0; i < chunks.size(); ++i)
    written.push_back({chunks[i].offset, chunks[i].size, static_cast<uint32_t>(crcs[i])});
  const auto* crc_raw = reinterpret_cast<const char*>(written.data());
  const std::vector<cluster::Bytes> every =
      comm.gather(cluster::Bytes(crc_raw, crc_raw + written.size() * sizeof(ChunkCrc)), 0);
  began = std::chrono::steady_clock::now();
  cluster::run_local_phase(comm, "merge", [&] {
    if (comm.rank() == 0) out.digest = verify_file(path, every, file_bytes);
  });
  out.seconds.check = seconds_since(began);
  return out;
}

}  // namespace sf::stages
