#include "stages/index_nprobe.h"

#include <faiss/invlists/InvertedLists.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "io/index_file.h"
#include "stages/ivf_index.h"

namespace sf::stages {
namespace {

// Every byte differs between the two, so the first differing byte is the field's first.
constexpr size_t kProbeA = 0x0101010101010101ULL, kProbeB = 0x0202020202020202ULL;

// `index` serialized with empty lists (nothing of its own lists is read) and `nprobe`.
std::vector<char> header_bytes(faiss::Index& index, faiss::IndexIVF& ivf, size_t nprobe) {
  faiss::ArrayInvertedLists empty(ivf.nlist, ivf.code_size);
  faiss::InvertedLists* const lists = ivf.invlists;
  const bool own = ivf.own_invlists;
  const size_t kept_nprobe = ivf.nprobe;
  struct Restore {
    faiss::IndexIVF& ivf;
    faiss::InvertedLists* lists;
    bool own;
    size_t nprobe;
    ~Restore() {
      ivf.invlists = lists;
      ivf.own_invlists = own;
      ivf.nprobe = nprobe;
    }
  } restore{ivf, lists, own, kept_nprobe};
  ivf.invlists = &empty;
  ivf.own_invlists = false;
  ivf.nprobe = nprobe;
  return io::serialize_index(index);
}

std::string io_error(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

NprobeField locate_nprobe(faiss::Index& index) {
  faiss::IndexIVF& ivf = ivf_of(index, "nprobe in the index file");
  const std::vector<char> a = header_bytes(index, ivf, kProbeA);
  const std::vector<char> b = header_bytes(index, ivf, kProbeB);
  size_t at = 0;
  while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
  if (a.size() != b.size() || at + sizeof(size_t) > a.size() ||
      std::memcmp(a.data() + at + sizeof(size_t), b.data() + at + sizeof(size_t),
                  a.size() - at - sizeof(size_t)) != 0)
    throw std::runtime_error(
        "nprobe in the index file: FAISS's serialization of the index does "
        "not differ in exactly one 8-byte field between two nprobe values");
  size_t stored = 0;
  std::memcpy(&stored, a.data() + at, sizeof(stored));
  if (stored != kProbeA)
    throw std::runtime_error("nprobe in the index file: the differing bytes are not nprobe");
  return {static_cast<uint64_t>(at),
          std::vector<char>(a.begin(), a.begin() + static_cast<long>(at))};
}

int64_t store_nprobe(const std::string& path, faiss::Index& index, int nprobe) {
  const NprobeField field = locate_nprobe(index);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(io_error(path, "cannot open"));
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  // The header (small: the transforms, the index header) must be this index's.
  std::vector<char> on_disk(field.before.size() + sizeof(size_t));
  const ssize_t got = ::pread(fd, on_disk.data(), on_disk.size(), 0);
  if (got < 0) throw std::runtime_error(io_error(path, "cannot read"));
  if (static_cast<size_t>(got) != on_disk.size() ||
      std::memcmp(on_disk.data(), field.before.data(), field.before.size()) != 0)
    throw std::runtime_error(path +
                             ": its header is not that of the index loaded from it: nprobe "
                             "not stored");
  size_t old = 0;
  std::memcpy(&old, on_disk.data() + field.before.size(), sizeof(old));
  const auto value = static_cast<size_t>(nprobe);
  if (::pwrite(fd, &value, sizeof(value), static_cast<off_t>(field.offset)) !=
      static_cast<ssize_t>(sizeof(value)))
    throw std::runtime_error(io_error(path, "cannot write nprobe"));
  if (::fsync(fd) != 0) throw std::runtime_error(io_error(path, "fsync failed"));
  return static_cast<int64_t>(old);
}

}  // namespace sf::stages
