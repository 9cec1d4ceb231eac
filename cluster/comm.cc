// The MPI-free parts of cluster/: SerialComm, agree(), row_range().
#include "cluster/comm.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>

namespace sf::cluster {
namespace {

class SerialComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void barrier() override {}
  void broadcast(Bytes&, int) override {}
  void allreduce_sum(int64_t*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void allreduce_max(double*, size_t) override {}
  void allreduce_min(int64_t*, size_t) override {}
  std::vector<Bytes> gather(const Bytes& mine, int) override { return {mine}; }
  std::vector<Bytes> allgather(const Bytes& mine) override { return {mine}; }
  std::vector<Bytes> alltoallv(const std::vector<Bytes>& send) override { return {send.at(0)}; }
  void send(const Bytes& bytes, int, int tag) override { pending_[tag] = bytes; }
  Bytes recv(int, int tag) override {
    Bytes out = std::move(pending_[tag]);
    pending_.erase(tag);
    return out;
  }
  [[noreturn]] void abort(int exit_code) override { std::_Exit(exit_code); }

 private:
  std::map<int, Bytes> pending_;
};

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const PhaseError& e) {
    return e.detail();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

namespace {

// One process: pwrite, fsync.
class PosixSharedFile final : public SharedFile {
 public:
  explicit PosixSharedFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot write " + path_ + ": " + std::strerror(errno));
  }
  ~PosixSharedFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void write_all(const std::vector<FileChunk>& chunks, uint64_t round_bytes) override {
    round_bytes = std::max<uint64_t>(1, round_bytes);
    std::vector<char> buffer;
    for (const FileChunk& c : chunks)
      for (uint64_t at = 0; at < c.size;) {
        const uint64_t n = std::min(c.size - at, round_bytes);
        buffer.resize(static_cast<size_t>(std::max<uint64_t>(buffer.size(), n)));
        c.fill(at, n, buffer.data());
        for (uint64_t done = 0; done < n;) {
          const ssize_t w = ::pwrite(fd_, buffer.data() + done, n - done,
                                     static_cast<off_t>(c.offset + at + done));
          if (w < 0) throw std::runtime_error("cannot write " + path_ + ": " + std::strerror(errno));
          done += static_cast<uint64_t>(w);
        }
        at += n;
      }
  }
  void close() override {
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0)
      throw std::runtime_error("cannot write " + path_ + ": sync failed: " + std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

FileChunk memory_chunk(uint64_t offset, const char* data, uint64_t size) {
  return {offset, size,
          [data](uint64_t at, uint64_t n, char* out) { std::memcpy(out, data + at, n); }};
}

std::unique_ptr<SharedFile> Comm::create_shared_file(const std::string& path) {
  if (size() != 1)
    throw std::logic_error("create_shared_file: this Comm has no shared files for " +
                           std::to_string(size()) + " ranks");
  return std::make_unique<PosixSharedFile>(path);
}

int64_t Comm::exscan(int64_t value) { return offsets(value)[static_cast<size_t>(rank())]; }

std::vector<int64_t> Comm::offsets(int64_t value) {
  const auto* p = reinterpret_cast<const char*>(&value);
  const std::vector<Bytes> all = allgather(Bytes(p, p + sizeof(value)));
  std::vector<int64_t> out(all.size() + 1, 0);
  for (size_t r = 0; r < all.size(); ++r) {
    int64_t v = 0;
    if (all[r].size() != sizeof(v)) throw std::runtime_error("offsets: a rank sent no count");
    std::memcpy(&v, all[r].data(), sizeof(v));
    out[r + 1] = out[r] + v;
  }
  return out;
}

std::unique_ptr<Comm> make_serial_comm() { return std::make_unique<SerialComm>(); }

void agree(Comm& comm, const std::string& phase, std::exception_ptr error) {
  (void)agree_or_stop(comm, phase, error, false);
}

bool agree_or_stop(Comm& comm, const std::string& phase, std::exception_ptr error, bool stop) {
  // One allreduce_min: a failing rank contributes its rank, a rank asked to stop `size`, the
  // others `size + 1`. The minimum names the first failed rank, else says whether any stops.
  const int64_t stopping = comm.size(), fine = stopping + 1;
  const int64_t first_failed = comm.min(error ? comm.rank() : stop ? stopping : fine);
  if (first_failed >= stopping) return first_failed == stopping;
  Bytes message;
  if (comm.rank() == first_failed) {
    const std::string what = describe(error);
    message.assign(what.begin(), what.end());
  }
  comm.broadcast(message, static_cast<int>(first_failed));
  throw PhaseError(phase, static_cast<int>(first_failed), std::string(message.begin(), message.end()));
}

RowRange row_range(int64_t rows, int rank, int size) {
  const int64_t base = rows / size;
  const int64_t extra = rows % size;
  RowRange r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

RowRange block_row_range(int64_t rows, int64_t block, int rank, int size) {
  const int64_t blocks = (rows + block - 1) / block;
  const RowRange b = row_range(blocks, rank, size);
  return RowRange{std::min(rows, b.begin * block), std::min(rows, b.end * block)};
}

}  // namespace sf::cluster
