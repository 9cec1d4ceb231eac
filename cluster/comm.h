// Comm: the ranks of one job and the collectives the stages use. The only folder that
// includes <mpi.h> is cluster/; SerialComm (one rank, no MPI) lets unit tests run without
// mpirun. Every method marked "collective" must be called by all ranks in the same order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cluster/shared_file.h"

namespace sf::cluster {

using Bytes = std::vector<char>;

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks of this job on this node (for choosing threads per rank).
  virtual int local_size() const = 0;

  virtual void barrier() = 0;                                     // collective
  virtual void broadcast(Bytes& bytes, int root) = 0;             // collective; resizes
  virtual void allreduce_sum(int64_t* data, size_t n) = 0;        // collective, in place
  virtual void allreduce_sum(double* data, size_t n) = 0;         // collective, in place
  virtual void allreduce_max(double* data, size_t n) = 0;         // collective, in place
  virtual void allreduce_min(int64_t* data, size_t n) = 0;        // collective, in place
  // Collective: root receives every rank's bytes, indexed by rank; others get {}.
  virtual std::vector<Bytes> gather(const Bytes& mine, int root) = 0;
  // Collective: every rank receives every rank's bytes, indexed by rank.
  virtual std::vector<Bytes> allgather(const Bytes& mine) = 0;
  // Collective: send[d] goes to rank d; returns what each rank sent here, indexed by source.
  virtual std::vector<Bytes> alltoallv(const std::vector<Bytes>& send) = 0;
  // Point to point (any size; large messages go in pieces).
  virtual void send(const Bytes& bytes, int dest, int tag) = 0;
  virtual Bytes recv(int source, int tag) = 0;
  // Last resort: ends every rank of the job.
  [[noreturn]] virtual void abort(int exit_code) = 0;
  // Collective: the sum of `value` over the ranks before this one (0 on rank 0), e.g. the
  // first global position of this rank's items. The default gathers every value.
  virtual int64_t exscan(int64_t value);
  // Collective: `path` created (or truncated) for writing by every rank (cluster/shared_file.h).
  // Throws std::runtime_error naming the path on every rank when it cannot be created.
  virtual std::unique_ptr<SharedFile> create_shared_file(const std::string& path);

  // Typed conveniences over the byte collectives.
  int64_t sum(int64_t value) { allreduce_sum(&value, 1); return value; }
  double sum(double value) { allreduce_sum(&value, 1); return value; }
  double max(double value) { allreduce_max(&value, 1); return value; }
  int64_t min(int64_t value) { allreduce_min(&value, 1); return value; }
  // Collective: every rank's exscan and the total: offsets[r] = the sum of the values of the
  // ranks before r, offsets[size()] = the sum of all (size() + 1 entries, on every rank).
  std::vector<int64_t> offsets(int64_t value);
};

// Collective: a typed alltoallv of plain records. outgoing[d] goes to rank d (and is emptied);
// returns the records received, indexed by source rank. Raw bytes, for the hot shuffles (dedup
// bands and clusters, vector rows): a Boost archive (cluster/archive.h, for records with
// strings or vectors inside) packs small records 3.5x slower and float rows no faster
// (bench/archive_bench.cc).
template <class T>
std::vector<std::vector<T>> exchange(Comm& comm, std::vector<std::vector<T>>& outgoing) {
  static_assert(std::is_trivially_copyable_v<T>, "exchange sends raw bytes");
  std::vector<Bytes> send(outgoing.size());
  for (size_t d = 0; d < outgoing.size(); ++d) {
    send[d].resize(outgoing[d].size() * sizeof(T));
    if (!outgoing[d].empty()) std::memcpy(send[d].data(), outgoing[d].data(), send[d].size());
    std::vector<T>().swap(outgoing[d]);
  }
  std::vector<Bytes> received = comm.alltoallv(send);
  send.clear();
  std::vector<std::vector<T>> out(received.size());
  for (size_t s = 0; s < received.size(); ++s) {
    out[s].resize(received[s].size() / sizeof(T));
    if (!out[s].empty()) std::memcpy(out[s].data(), received[s].data(), received[s].size());
    Bytes().swap(received[s]);
  }
  return out;
}

// A single-process Comm: rank 0 of 1. Collectives are identities.
std::unique_ptr<Comm> make_serial_comm();

// Owns MPI_Init/MPI_Finalize for the process. world() is the job's communicator.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  Comm& world() { return *world_; }

 private:
  std::unique_ptr<Comm> world_;
};

// A phase failed on at least one rank. Every rank throws it with the same message: the
// first failing rank's, prefixed with the phase and that rank.
class PhaseError : public std::runtime_error {
 public:
  PhaseError(const std::string& phase, int failed_rank, const std::string& what)
      : std::runtime_error(phase + " failed on rank " + std::to_string(failed_rank) + ": " +
                           what),
        phase_(phase), failed_rank_(failed_rank), detail_(what) {}
  const std::string& phase() const { return phase_; }
  int failed_rank() const { return failed_rank_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string phase_;
  int failed_rank_;
  std::string detail_;
};

// Collective: every rank reports whether its local work failed (`error` null when it did
// not); if any did, all ranks throw the same PhaseError. Ranks never split: call this
// before each collective phase so none throws while the others wait in a collective.
void agree(Comm& comm, const std::string& phase, std::exception_ptr error);

// Collective: agree() that also carries a stop request (e.g. a SIGTERM on some rank), in one
// small allreduce. Throws PhaseError as agree() does when any rank failed; otherwise returns
// true on every rank when any rank passed stop = true.
bool agree_or_stop(Comm& comm, const std::string& phase, std::exception_ptr error, bool stop);

// Local: runs `local_work`; the exception it threw, or null.
inline std::exception_ptr exception_of(const std::function<void()>& local_work) {
  try {
    local_work();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

// Collective: runs `local_work` (which must not call collectives), then agree().
inline void run_local_phase(Comm& comm, const std::string& phase,
                            const std::function<void()>& local_work) {
  agree(comm, phase, exception_of(local_work));
}

// The contiguous global row range [begin, end) that `rank` of `size` owns out of `rows`:
// balanced, earlier ranks get the extra row. No MPI.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
RowRange row_range(int64_t rows, int rank, int size);

// Like row_range, but edges fall on multiples of `block` rows (balanced in whole blocks; the
// last block may be short). Work done per block is then the same for any number of ranks.
// A rank may get no rows when there are fewer blocks than ranks. No MPI.
RowRange block_row_range(int64_t rows, int64_t block, int rank, int size);

// Collective: the ranks hold consecutive pieces of one sequence of rows (rank 0's piece
// first), each row `width` values of T in `mine`; returns the rows of `target` (this rank's
// wanted range of the sequence; the ranks' targets must cover it, in rank order), moved with
// one alltoallv. E.g. documents that survived a dedup, to block-aligned row ranges.
template <class T>
std::vector<T> redistribute_rows(Comm& comm, const std::vector<T>& mine, size_t width,
                                 RowRange target) {
  static_assert(std::is_trivially_copyable_v<T>, "redistribute_rows sends raw bytes");
  if (width == 0 || mine.size() % width != 0)
    throw std::logic_error("redistribute_rows: the values are not whole rows");
  const int64_t held = static_cast<int64_t>(mine.size() / width);
  int64_t mine_info[3] = {held, target.begin, target.end};
  const auto* raw = reinterpret_cast<const char*>(mine_info);
  const std::vector<Bytes> all = comm.allgather(Bytes(raw, raw + sizeof(mine_info)));
  int64_t start = 0;  // where this rank's piece starts in the sequence
  std::vector<RowRange> targets(all.size());
  for (size_t r = 0; r < all.size(); ++r) {
    int64_t info[3];
    std::memcpy(info, all[r].data(), sizeof(info));
    if (static_cast<int>(r) < comm.rank()) start += info[0];
    targets[r] = {info[1], info[2]};
  }
  // Rows that stay on this rank are not copied into a message: only the rows that move (at
  // the edges of the ranges, usually) are buffered, so the peak is `mine` plus the result.
  std::vector<std::vector<T>> outgoing(all.size());
  int64_t stay_begin = 0, stay_end = 0;  // positions in `mine`, in rows
  for (size_t d = 0; d < all.size(); ++d) {
    const int64_t begin = std::max(start, targets[d].begin);
    const int64_t end = std::min(start + held, targets[d].end);
    if (begin >= end) continue;
    if (static_cast<int>(d) == comm.rank()) {
      stay_begin = begin - start;
      stay_end = end - start;
    } else {
      outgoing[d].assign(mine.begin() + (begin - start) * static_cast<int64_t>(width),
                         mine.begin() + (end - start) * static_cast<int64_t>(width));
    }
  }
  std::vector<std::vector<T>> incoming = exchange(comm, outgoing);
  std::vector<T> rows;
  rows.reserve(static_cast<size_t>(target.size()) * width);
  for (size_t s = 0; s < incoming.size(); ++s) {
    if (static_cast<int>(s) == comm.rank())
      rows.insert(rows.end(), mine.begin() + stay_begin * static_cast<int64_t>(width),
                  mine.begin() + stay_end * static_cast<int64_t>(width));
    else
      rows.insert(rows.end(), incoming[s].begin(), incoming[s].end());
    std::vector<T>().swap(incoming[s]);
  }
  if (static_cast<int64_t>(rows.size()) != target.size() * static_cast<int64_t>(width))
    throw std::logic_error("redistribute_rows: the targets do not cover the sequence");
  return rows;
}

}  // namespace sf::cluster
