#include "io/index_file.h"

#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <filesystem>
#include <stdexcept>

#include "io/atomic_file.h"

namespace sf::io {

std::vector<char> serialize_index(const faiss::Index& index) {
  faiss::VectorIOWriter writer;
  faiss::write_index(&index, &writer);
  std::vector<char> bytes(writer.data.begin(), writer.data.end());
  return bytes;
}

std::unique_ptr<faiss::Index> deserialize_index(const std::vector<char>& bytes) {
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
}

void write_index_file(const faiss::Index& index, const std::string& path) {
  publish_file(path, [&](const std::string& tmp) {
    try {
      faiss::write_index(&index, tmp.c_str());
    } catch (const faiss::FaissException& e) {
      throw std::runtime_error(e.what());
    }
  });
}

std::unique_ptr<faiss::Index> read_index_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such index file");
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(path.c_str()));
  } catch (const faiss::FaissException& e) {
    throw std::runtime_error(path + ": not a readable FAISS index: " + e.what());
  }
}

}  // namespace sf::io
