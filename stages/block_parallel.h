// Running FAISS calls that go through BLAS so that their results do not depend on the number
// of OpenMP threads (issue 13).
//
// Why we go around FAISS's default threading: FAISS calls sgemm from outside any parallel
// region, and OpenBLAS's OpenMP build then splits that GEMM over omp_get_max_threads()
// threads (it runs single-threaded only when omp_in_parallel() or the count is 1). On its
// Prescott, Haswell and Zen kernels (not SkylakeX) a split GEMM rounds some products
// differently, so distances, transforms and trained matrices would change in their last bits
// with the thread count. Instead each block of rows (kBlockRows, aligned to global rows) runs
// whole on one thread of our own team, with BLAS and FAISS's nested loops single-threaded:
// every GEMM then has the same shape, and the same result, for any number of ranks and
// threads. Independent single-threaded GEMMs also scale at least as well as one split GEMM.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

namespace sf::stages {

// While alive, this thread runs OpenMP regions (FAISS's loops) and BLAS with one thread; the
// count before is restored on destruction. Not copyable.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedBlas() { omp_set_num_threads(saved_); }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

// The size of the team parallel_blocks runs `blocks` blocks with: min(threads, blocks), >= 1.
inline int block_team_size(int64_t blocks) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), blocks)));
}

// Calls work(b, t) for every b in [0, blocks), on a team of block_team_size(blocks) OpenMP
// threads (t: the thread's number in it), each block whole on one thread with BLAS and
// FAISS's OpenMP loops single-threaded. Blocks run in any order and concurrently: work must
// write only its own block's outputs (or thread t's). An exception thrown by work stops
// that thread's further blocks and is rethrown (the one of the lowest thread) after all.
template <class Work>
void parallel_blocks(int64_t blocks, Work&& work) {
  if (blocks <= 0) return;
  const int threads = block_team_size(blocks);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    // Also in a team of one thread, which is not an active parallel region: OpenBLAS would
    // split the GEMM there. This sets the nested thread count of this team's threads only;
    // the caller's is unchanged after the region.
    omp_set_num_threads(1);
    const int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) {
      if (errors[static_cast<size_t>(t)]) continue;
      try {
        work(b, t);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace sf::stages
