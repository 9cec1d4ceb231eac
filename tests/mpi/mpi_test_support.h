// What the MPI tests share: a temp directory every rank can see, files written once by
// rank 0, and checks gathered on rank 0 (the only rank whose gtest output is printed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "tests/test_util.h"

namespace sf::testing {

// A TempDir made by rank 0 whose path every rank receives. Collective to create and to
// destroy (ranks wait for each other before rank 0 removes it).
class SharedTempDir {
 public:
  explicit SharedTempDir(cluster::Comm& comm) : comm_(comm) {
    cluster::Bytes path;
    if (comm_.rank() == 0) {
      dir_ = std::make_unique<TempDir>();
      path.assign(dir_->path().begin(), dir_->path().end());
    }
    comm_.broadcast(path, 0);
    path_.assign(path.begin(), path.end());
  }
  ~SharedTempDir() { comm_.barrier(); }
  SharedTempDir(const SharedTempDir&) = delete;
  SharedTempDir& operator=(const SharedTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  cluster::Comm& comm_;
  std::unique_ptr<TempDir> dir_;  // rank 0 only
  std::string path_;
};

// Collective: rank 0 writes `data` (rows x dim) as fvecs; returns once the file is complete.
inline void write_fvecs_on_rank0(cluster::Comm& comm, const std::string& path,
                                 const std::vector<float>& data, int64_t rows, int dim) {
  cluster::run_local_phase(comm, "test: write " + path, [&] {
    if (comm.rank() == 0) io::write_fvecs(path, data.data(), rows, dim);
  });
}

// Collective: every rank's string, on rank 0 (empty elsewhere).
inline std::vector<std::string> gather_strings(cluster::Comm& comm, const std::string& mine) {
  const std::vector<cluster::Bytes> parts =
      comm.gather(cluster::Bytes(mine.begin(), mine.end()), 0);
  std::vector<std::string> out;
  for (const cluster::Bytes& p : parts) out.emplace_back(p.begin(), p.end());
  return out;
}

// Collective: on rank 0, one line per rank whose `problem` is not empty; "" when none.
inline std::string problems_on_any_rank(cluster::Comm& comm, const std::string& problem) {
  std::string all;
  const std::vector<std::string> per_rank = gather_strings(comm, problem);
  for (size_t r = 0; r < per_rank.size(); ++r)
    if (!per_rank[r].empty()) all += "rank " + std::to_string(r) + ": " + per_rank[r] + "\n";
  return all;
}

}  // namespace sf::testing
