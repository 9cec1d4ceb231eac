// A file that every rank writes parts of at the same time: the collective merge writes
// index.faiss this way, each rank its own codes and ids straight into their final place.
// Over MPI it is MPI-IO (MPI_File_open on the shared path, MPI_File_write_all through a file
// view of the rank's chunks, in bounded rounds); on one process, pwrite.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sf::cluster {

// `size` bytes go to file offset `offset`; `fill` produces them when they are written, into
// the round's buffer: bytes [at, at + n) of the chunk into `out`. Each byte is asked for once,
// in increasing order. A `fill` that throws fails the write (as a failed write does).
struct FileChunk {
  uint64_t offset;
  uint64_t size;
  std::function<void(uint64_t at, uint64_t n, char* out)> fill;
};

// A chunk whose bytes are in memory. REQUIRES: `data` outlives the write.
FileChunk memory_chunk(uint64_t offset, const char* data, uint64_t size);

class SharedFile {
 public:
  virtual ~SharedFile() = default;
  // Collective: every rank writes its chunks (sorted by offset, not overlapping each other
  // or another rank's; any number, also none). Bytes move in rounds of at most `round_bytes`
  // per rank (a buffer of that size, filled by the chunks' `fill`, is the memory it takes). Throws std::runtime_error on every
  // rank whose write failed, naming the file and the reason; the others return, so callers
  // agree on the outcome (cluster::agree) afterwards.
  virtual void write_all(const std::vector<FileChunk>& chunks, uint64_t round_bytes) = 0;
  // Collective: the data on storage (MPI_File_sync / fsync), the file closed. Throws as
  // write_all.
  virtual void close() = 0;
};

}  // namespace sf::cluster
