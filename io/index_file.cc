#include "io/index_file.h"

#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
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

namespace {

// FAISS's own file writer ignores fclose's result, so the last buffered block failing (a full
// disk) would go unnoticed. This one checks every fwrite and the close.
class CheckedFileWriter : public faiss::IOWriter {
 public:
  explicit CheckedFileWriter(const std::string& path) : file_(std::fopen(path.c_str(), "wb")) {
    name = path;
    if (file_ == nullptr)
      throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  }
  ~CheckedFileWriter() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    const size_t n = std::fwrite(ptr, size, nitems, file_);
    if (n != nitems) error_ = errno;
    return n;
  }
  // strerror of the first failed fwrite; "" when none failed.
  std::string failure() const { return error_ != 0 ? std::strerror(error_) : ""; }
  void close() {
    const int rc = std::fclose(file_);
    const int err = rc != 0 ? errno : error_;
    file_ = nullptr;
    if (rc != 0 || error_ != 0) throw std::runtime_error(name + ": write failed: " + std::strerror(err));
  }

 private:
  std::FILE* file_;
  int error_ = 0;
};

}  // namespace

void write_index_file(const faiss::Index& index, const std::string& path) {
  publish_file(path, [&](const std::string& tmp) {
    CheckedFileWriter writer(tmp);
    try {
      faiss::write_index(&index, &writer);
    } catch (const faiss::FaissException& e) {
      const std::string why = writer.failure();
      throw std::runtime_error(why.empty() ? e.what() : "write failed: " + why);
    }
    writer.close();
  });
}

namespace {

std::unique_ptr<faiss::Index> read_index_with(const std::string& path, int io_flags) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such index file");
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(path.c_str(), io_flags));
  } catch (const faiss::FaissException& e) {
    throw std::runtime_error(path + ": not a readable FAISS index: " + e.what());
  } catch (const std::bad_alloc&) {
    // FAISS sizes its vectors from the file: a damaged size asks for terabytes.
    throw std::runtime_error(path +
                             ": not a readable FAISS index: a size in it needs more "
                             "memory than there is (a damaged file?)");
  } catch (const std::length_error&) {
    throw std::runtime_error(path +
                             ": not a readable FAISS index: a size in it is impossible "
                             "(a damaged file?)");
  }
}

}  // namespace

std::unique_ptr<faiss::Index> read_index_file(const std::string& path) {
  return read_index_with(path, 0);
}

std::unique_ptr<faiss::Index> read_index_file_mapped(const std::string& path) {
  return read_index_with(path, faiss::IO_FLAG_MMAP);
}

}  // namespace sf::io
