#include "stages/list_source.h"

#include <faiss/invlists/InvertedLists.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>

#include "stages/ivf_index.h"
#include "stages/merge.h"

namespace sf::stages {
namespace {

class ArrayListSource final : public ListSource {
 public:
  explicit ArrayListSource(const faiss::ArrayInvertedLists& lists) : lists_(lists) {}
  size_t nlist() const override { return lists_.nlist; }
  size_t code_size() const override { return lists_.code_size; }
  uint64_t list_size(size_t list) const override { return lists_.ids[list].size(); }
  void read_codes(size_t list, uint64_t begin, uint64_t end, uint8_t* codes) const override {
    std::memcpy(codes, lists_.codes[list].data() + begin * lists_.code_size,
                (end - begin) * lists_.code_size);
  }
  void read_ids(size_t list, uint64_t begin, uint64_t end, int64_t* ids) const override {
    std::memcpy(ids, lists_.ids[list].data() + begin, (end - begin) * sizeof(int64_t));
  }

 private:
  const faiss::ArrayInvertedLists& lists_;
};

// Files read with pread, at most kMaxOpen of them open at once (a rank may have thousands of
// pieces; the oldest opened is closed first).
class PieceFiles {
 public:
  static constexpr size_t kMaxOpen = 256;
  explicit PieceFiles(std::vector<std::string> paths)
      : paths_(std::move(paths)), fds_(paths_.size(), -1) {}
  PieceFiles(const PieceFiles&) = delete;
  PieceFiles& operator=(const PieceFiles&) = delete;
  ~PieceFiles() {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  const std::string& path(size_t i) const { return paths_[i]; }
  // Exactly `n` bytes of file `i` at `offset`, or throws naming the file.
  void read(size_t i, uint64_t offset, void* out, uint64_t n) {
    const int fd = open(i);
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        throw std::runtime_error("cannot read " + paths_[i] + ": " +
                                 (got < 0 ? std::strerror(errno) : "the file ends early"));
      p += got;
      offset += static_cast<uint64_t>(got);
      n -= static_cast<uint64_t>(got);
    }
  }
  uint64_t size(size_t i) {
    const off_t end = ::lseek(open(i), 0, SEEK_END);
    if (end < 0) throw std::runtime_error("cannot read " + paths_[i] + ": " + std::strerror(errno));
    return static_cast<uint64_t>(end);
  }

 private:
  int open(size_t i) {
    if (fds_[i] >= 0) return fds_[i];
    if (opened_.size() == kMaxOpen) {
      ::close(fds_[opened_.front()]);
      fds_[opened_.front()] = -1;
      opened_.pop_front();
    }
    fds_[i] = ::open(paths_[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (fds_[i] < 0)
      throw std::runtime_error("cannot read " + paths_[i] + ": " + std::strerror(errno));
    opened_.push_back(i);
    return fds_[i];
  }

  std::vector<std::string> paths_;
  std::vector<int> fds_;
  std::deque<size_t> opened_;
};

class PieceListSource final : public ListSource {
 public:
  PieceListSource(const std::vector<std::string>& paths, size_t nlist, size_t code_size)
      : nlist_(nlist), code_size_(code_size), files_(paths), lists_(nlist), sizes_(nlist, 0) {
    for (size_t piece = 0; piece < paths.size(); ++piece) {
      const std::string& path = paths[piece];
      ShardHeader h{};
      files_.read(piece, 0, &h, sizeof(h));
      if (std::memcmp(h.magic, kShardMagic, 4) != 0)
        throw std::runtime_error(path + ": not a shard file");
      if (h.version != kShardFormatVersion)
        throw std::runtime_error(path + ": shard format version " + std::to_string(h.version) +
                                 ", expected " + std::to_string(kShardFormatVersion));
      if (h.nlist != nlist || h.code_size != code_size)
        throw std::runtime_error(path + ": nlist " + std::to_string(h.nlist) + " code size " +
                                 std::to_string(h.code_size) + ", the index has " +
                                 std::to_string(nlist) + " / " + std::to_string(code_size));
      std::vector<uint64_t> sizes(nlist);
      files_.read(piece, sizeof(h), sizes.data(), nlist * sizeof(uint64_t));
      uint64_t at = sizeof(h) + nlist * sizeof(uint64_t);
      const uint64_t bytes = files_.size(piece);
      for (size_t l = 0; l < nlist; ++l) {
        const uint64_t n = sizes[l];
        if (n == 0) continue;
        // Checked before multiplying: a corrupt length must not wrap around.
        if (n > bytes / (sizeof(int64_t) + code_size) + 1)
          throw std::runtime_error(path + ": list " + std::to_string(l) + " of " +
                                   std::to_string(n) + " entries is longer than the file");
        lists_[l].push_back({sizes_[l], at, static_cast<uint32_t>(piece)});
        sizes_[l] += n;
        at += n * (sizeof(int64_t) + code_size);
      }
      if (at != bytes)
        throw std::runtime_error(path + ": " + std::to_string(bytes) + " bytes, its lists take " +
                                 std::to_string(at));
    }
  }

  size_t nlist() const override { return nlist_; }
  size_t code_size() const override { return code_size_; }
  uint64_t list_size(size_t list) const override { return sizes_[list]; }
  void read_codes(size_t list, uint64_t begin, uint64_t end, uint8_t* codes) const override {
    read(list, begin, end, code_size_, codes, /*codes=*/true);
  }
  void read_ids(size_t list, uint64_t begin, uint64_t end, int64_t* ids) const override {
    read(list, begin, end, sizeof(int64_t), reinterpret_cast<uint8_t*>(ids), /*codes=*/false);
  }

 private:
  // A list's entries in one piece: the ids at `at`, then the codes.
  struct Segment {
    uint64_t first;  // the list's entry index of the segment's first entry
    uint64_t at;
    uint32_t piece;
  };

  void read(size_t list, uint64_t begin, uint64_t end, size_t width, uint8_t* out,
            bool codes) const {
    if (begin >= end) return;
    const std::vector<Segment>& segments = lists_[list];
    // The segment holding `begin`: the last one that starts at or before it.
    auto s = std::upper_bound(segments.begin(), segments.end(), begin,
                              [](uint64_t i, const Segment& seg) { return i < seg.first; });
    for (--s; begin < end; ++s) {
      const uint64_t next = s + 1 == segments.end() ? sizes_[list] : (s + 1)->first;
      const uint64_t n = next - s->first;  // entries in the segment
      const uint64_t take = std::min(end, next) - begin;
      const uint64_t base = codes ? s->at + n * sizeof(int64_t) : s->at;
      files_.read(s->piece, base + (begin - s->first) * width, out, take * width);
      out += take * width;
      begin += take;
    }
  }

  size_t nlist_, code_size_;
  mutable PieceFiles files_;
  std::vector<std::vector<Segment>> lists_;  // per list, in piece order
  std::vector<uint64_t> sizes_;
};

}  // namespace

std::unique_ptr<ListSource> lists_in_memory(const faiss::Index& shard) {
  const faiss::IndexIVF* ivf = find_ivf(&shard);
  const auto* lists = ivf ? dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists) : nullptr;
  if (lists == nullptr)
    throw std::logic_error("lists_in_memory: not an IVF index with ArrayInvertedLists");
  return std::make_unique<ArrayListSource>(*lists);
}

std::unique_ptr<ListSource> lists_in_pieces(const std::vector<std::string>& paths, size_t nlist,
                                            size_t code_size) {
  return std::make_unique<PieceListSource>(paths, nlist, code_size);
}

}  // namespace sf::stages
