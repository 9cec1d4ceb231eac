// FAISS indexes to and from bytes and files. Files are FAISS's own format (fourcc-tagged,
// versioned by FAISS), readable by stock FAISS (`faiss.read_index`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <faiss/Index.h>

namespace sf::io {

std::vector<char> serialize_index(const faiss::Index& index);
std::unique_ptr<faiss::Index> deserialize_index(const std::vector<char>& bytes);

// Writes atomically (io/atomic_file.h). Throws std::runtime_error naming the path.
void write_index_file(const faiss::Index& index, const std::string& path);
// Throws std::runtime_error naming the path when missing, not a FAISS index, or damaged (also
// a size field that would need more memory than there is). Either layout: in memory
// (ArrayInvertedLists, read whole) or on disk (OnDiskInvertedLists: the lists' file, found in
// `path`'s folder under the name index.faiss records, is mapped read-only, not read; so the run
// directory can move). A lists' file shorter than recorded is an error.
std::unique_ptr<faiss::Index> read_index_file(const std::string& path);
// read_index_file with the inverted lists mapped, not read (FAISS's IO_FLAG_MMAP): the list
// sizes and the quantizer are there at once, the codes stay on disk until touched. For
// readers that need the index's shape only, however large the file (`report`).
std::unique_ptr<faiss::Index> read_index_file_mapped(const std::string& path);

}  // namespace sf::io
