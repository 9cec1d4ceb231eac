#include "io/index_file.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/impl/io_macros.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedListsIOHook.h>
#include <faiss/invlists/OnDiskInvertedLists.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
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
    // FAISS writes an empty vector (the lists of an empty index) as a null pointer and 0 items:
    // fwrite's pointer must not be null even then.
    if (size == 0 || nitems == 0) return nitems;
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

// Reading an on-disk index as stock FAISS would map its lists' file by the recorded name,
// relative to the working directory (or, with IO_FLAG_ONDISK_SAME_DIR, next to index.faiss but
// announced on stdout). So read_index_file reads with IO_FLAG_SKIP_IVF_DATA, which leaves an
// OnDiskInvertedLists unmapped, and maps it itself. In-memory lists ("ilar") are then handed to
// the hook named by the flags' high 16 bits: this one, which reads them as FAISS does
// (impl/index_read.cpp, read_InvertedLists, faiss 1.7.3).
constexpr uint32_t kHookKey = 'i' | 'l' << 8 | 's' << 16 | 'f' << 24;  // "ilsf"
constexpr int kReadFlags =
    faiss::IO_FLAG_SKIP_IVF_DATA | faiss::IO_FLAG_READ_ONLY | static_cast<int>(kHookKey & 0xffff0000);

struct ArrayListsReader : faiss::InvertedListsIOHook {
  ArrayListsReader() : InvertedListsIOHook("ilsf", "sf::io::ArrayListsReader") {}
  void write(const faiss::InvertedLists*, faiss::IOWriter*) const override {
    throw std::logic_error("ArrayListsReader only reads");
  }
  faiss::InvertedLists* read(faiss::IOReader*, int) const override {
    throw std::logic_error("ArrayListsReader only reads ArrayInvertedLists");
  }
  faiss::InvertedLists* read_ArrayInvertedLists(faiss::IOReader* f, int, size_t nlist,
                                               size_t code_size,
                                               const std::vector<size_t>& sizes) const override {
    auto ails = std::make_unique<faiss::ArrayInvertedLists>(nlist, code_size);
    for (size_t i = 0; i < nlist; i++) {
      ails->ids[i].resize(sizes[i]);
      ails->codes[i].resize(sizes[i] * code_size);
    }
    for (size_t i = 0; i < nlist; i++) {
      const size_t n = ails->ids[i].size();
      if (n > 0) {
        READANDCHECK(ails->codes[i].data(), n * code_size);
        READANDCHECK(ails->ids[i].data(), n);
      }
    }
    return ails.release();
  }
};

// Maps an on-disk index's lists' file, found in `path`'s folder. (IO_FLAG_MMAP, which
// read_index_file_mapped passes, includes IO_FLAG_SKIP_IVF_DATA: it maps in-memory lists
// straight from index.faiss and leaves an on-disk index's lists unmapped, which this maps.)
void map_ondisk_lists(faiss::Index& index, const std::string& path) {
  faiss::Index* at = &index;
  while (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(at)) at = pre->index;
  auto* ivf = dynamic_cast<faiss::IndexIVF*>(at);
  auto* od = ivf ? dynamic_cast<faiss::OnDiskInvertedLists*>(ivf->invlists) : nullptr;
  if (od == nullptr || od->ptr != nullptr) return;  // in memory, or mapped by FAISS (IO_FLAG_MMAP)
  const std::string name = std::filesystem::path(od->filename).filename().string();
  od->filename = (std::filesystem::path(path).parent_path() / name).string();
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(od->filename, ec);
  if (ec) throw std::runtime_error(path + ": its lists' file " + od->filename + ": " + ec.message());
  if (bytes < od->totsize)
    throw std::runtime_error(path + ": its lists' file " + od->filename + " has " +
                             std::to_string(bytes) + " bytes, " + std::to_string(od->totsize) +
                             " recorded (a damaged or partly copied file?)");
  od->read_only = true;
  od->do_mmap();
}

std::unique_ptr<faiss::Index> read_index_with(const std::string& path, int io_flags) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such index file");
  static std::once_flag hook_added;
  std::call_once(hook_added, [] { faiss::InvertedListsIOHook::add_callback(new ArrayListsReader); });
  try {
    std::unique_ptr<faiss::Index> index(faiss::read_index(path.c_str(), io_flags));
    map_ondisk_lists(*index, path);
    return index;
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
  return read_index_with(path, kReadFlags);
}

std::unique_ptr<faiss::Index> read_index_file_mapped(const std::string& path) {
  return read_index_with(path, faiss::IO_FLAG_MMAP);
}

}  // namespace sf::io
