// Comm: the ranks of one job and the collectives the stages use. The only folder that
// includes <mpi.h> is cluster/; SerialComm (one rank, no MPI) lets unit tests run without
// mpirun. Every method marked "collective" must be called by all ranks in the same order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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

  // Typed conveniences over the byte collectives.
  int64_t sum(int64_t value) { allreduce_sum(&value, 1); return value; }
  double sum(double value) { allreduce_sum(&value, 1); return value; }
  double max(double value) { allreduce_max(&value, 1); return value; }
  int64_t min(int64_t value) { allreduce_min(&value, 1); return value; }
};

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

// Collective: runs `local_work` (which must not call collectives), then agree().
inline void run_local_phase(Comm& comm, const std::string& phase,
                            const std::function<void()>& local_work) {
  std::exception_ptr error;
  try {
    local_work();
  } catch (...) {
    error = std::current_exception();
  }
  agree(comm, phase, error);
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

}  // namespace sf::cluster
