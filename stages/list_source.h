// Where a rank's inverted lists are read from when they are written out (the collective merge,
// stages/merge.h): its shard in memory, or the add stage's pieces on disk (out of core: the
// shard is never assembled). The entries of a list come in the rank's id order; for pieces
// that is the pieces' row order, so the same rows give the same entries either way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <faiss/Index.h>

namespace sf::stages {

// One rank's inverted lists, read by entry ranges. Reads do not change the source; not
// thread-safe (one reader at a time).
class ListSource {
 public:
  virtual ~ListSource() = default;
  virtual size_t nlist() const = 0;
  virtual size_t code_size() const = 0;
  // This rank's number of entries in `list`.
  virtual uint64_t list_size(size_t list) const = 0;
  // Copies entries [begin, end) of `list`: their codes (code_size() bytes each) into `codes`,
  // or their ids into `ids`. REQUIRES: begin <= end <= list_size(list). Throws
  // std::runtime_error naming the file when a read fails.
  virtual void read_codes(size_t list, uint64_t begin, uint64_t end, uint8_t* codes) const = 0;
  virtual void read_ids(size_t list, uint64_t begin, uint64_t end, int64_t* ids) const = 0;
};

// The lists of `shard` (an IVF index with ArrayInvertedLists, otherwise std::logic_error).
// REQUIRES: `shard` outlives the source and is not changed while it is read.
std::unique_ptr<ListSource> lists_in_memory(const faiss::Index& shard);

// The lists of the shard wire-format files `paths` (encode_shard, stages/merge.h: the add
// stage's pieces) concatenated in the given order (the pieces' row order). Reads each file's
// header and list sizes now (checked: format, version, `nlist`, `code_size`, the file's
// length) and the entries with pread when asked; keeps at most 256 of the files open, and
// (pieces x non-empty lists) records of 24 bytes in memory. Throws std::runtime_error naming
// the file.
std::unique_ptr<ListSource> lists_in_pieces(const std::vector<std::string>& paths, size_t nlist,
                                            size_t code_size);

}  // namespace sf::stages
