// A file that every rank writes parts of at the same time: the collective merge writes
// index.faiss this way, each rank its own codes and ids straight into their final place.
// Over MPI it is MPI-IO (MPI_File_open on the shared path, MPI_File_write_all through a file
// view of the rank's chunks, in bounded rounds); on one process, pwrite.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sf::cluster {

// `size` bytes from `data` go to file offset `offset`.
struct FileChunk {
  uint64_t offset;
  const char* data;
  uint64_t size;
};

class SharedFile {
 public:
  virtual ~SharedFile() = default;
  // Collective: every rank writes its chunks (sorted by offset, not overlapping each other
  // or another rank's; any number, also none). Bytes move in rounds of at most `round_bytes`
  // per rank (a buffer of that size is the memory it takes). Throws std::runtime_error on every
  // rank whose write failed, naming the file and the reason; the others return, so callers
  // agree on the outcome (cluster::agree) afterwards.
  virtual void write_all(const std::vector<FileChunk>& chunks, uint64_t round_bytes) = 0;
  // Collective: the data on storage (MPI_File_sync / fsync), the file closed. Throws as
  // write_all.
  virtual void close() = 0;
};

}  // namespace sf::cluster
