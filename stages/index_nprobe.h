// The nprobe that an IVF index file stores (FAISS writes an IndexIVF's nprobe into its header),
// set in place in a written index.faiss: eval's recommended nprobe travels with the index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>

namespace sf::stages {

// Where FAISS's serialization of `index` (an IndexIVF, or one behind transforms: OPQ, PCA)
// holds the IVF's nprobe: 8 bytes (size_t) at `offset`, after the bytes `before` (the
// transforms, the index header, nlist). Found by serializing the index with empty lists at two
// nprobe values and comparing; the index is left as it was. Throws std::invalid_argument when
// `index` has no IVF, std::runtime_error when the two serializations differ elsewhere.
struct NprobeField {
  uint64_t offset = 0;
  std::vector<char> before;
};
NprobeField locate_nprobe(faiss::Index& index);

// Sets the nprobe stored in the index file `path` to `nprobe` in place: 8 bytes, pwrite +
// fsync (the file may be GBs: it is not rewritten). Either layout (in memory or on disk: the
// header is in index.faiss). REQUIRES: `path` holds `index`: its bytes before the field must
// be locate_nprobe(index).before, else throws std::runtime_error naming the path (as for any
// I/O error). Returns the nprobe the file held. Local.
int64_t store_nprobe(const std::string& path, faiss::Index& index, int nprobe);

}  // namespace sf::stages
