// Distributed k-means for the coarse quantizer, and the rank-independent training sample.
//
// Determinism: the sample is chosen from global row ids and the seed only; points are
// assigned in blocks of the same shapes, each with single-threaded BLAS; each rank sums its
// points' coordinates in 64-bit fixed point, so the MPI_Allreduce of partial sums is exact
// and the centroids (and objective) are bit-identical for any number of ranks and threads.
//
// Stopping and resuming: with a stop request function set, the ranks agree at every
// iteration boundary whether to stop; on a stop every rank throws KMeansStopped holding the
// state after the last whole iteration. A later run passing that state continues there and
// ends with exactly the centroids (and objective) of an uninterrupted run.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cluster/comm.h"
#include "stages/progress.h"
#include "stages/stop_request.h"

namespace sf::stages {

// `count` distinct ids from [0, rows), sorted, chosen by `seed` alone (Floyd's algorithm
// over a SplitMix64 stream). All of them when count >= rows. No MPI.
std::vector<int64_t> choose_sample(int64_t rows, int64_t count, uint64_t seed);

// Where k-means stands between two iterations: everything the next iteration depends on
// besides the sample and the options. The same on every rank, for any number of ranks.
struct KMeansState {
  int k = 0, d = 0;
  int iteration = 0;              // iterations done
  std::vector<float> centroids;   // k x d after `iteration` iterations
  std::vector<double> objective;  // one per iteration done
  int empty_clusters_split = 0;   // so far
};

// On-disk form of a KMeansState: a Boost.Serialization binary archive (cluster/archive.h) of
// class version kKMeansStateFormatVersion. Version 1 was the hand-packed "SFKM" format of
// earlier builds: decode refuses it, as any version it does not read, with
// cluster::ArchiveVersionError (the caller then starts k-means afresh); and throws
// std::runtime_error for damaged bytes or a state whose sizes do not agree. No MPI.
constexpr unsigned kKMeansStateFormatVersion = 2;
cluster::Bytes encode_kmeans_state(const KMeansState& state);
KMeansState decode_kmeans_state(const cluster::Bytes& bytes);

struct KMeansOptions {
  int k = 0;
  int iterations = 10;
  uint64_t seed = 1234;
  bool inner_product = false;  // assign by max inner product, normalise centroids (spherical)
  // Continue after resume->iteration iterations instead of starting from the seeded initial
  // centroids. REQUIRES: the state of a run over the same sample with the same k, d, seed and
  // metric (iterations may be any number >= resume->iteration). Not owned.
  const KMeansState* resume = nullptr;
  // When set (on every rank alike), the ranks agree before each iteration and after the last
  // whether any was asked to stop; then every rank throws KMeansStopped.
  StopRequestFn stop_requested;
  ProgressFn progress;  // after each iteration: ("k-means", iterations done, iterations)
};

// The ranks agreed to stop k-means at an iteration boundary; state() continues it.
class KMeansStopped : public StageStopped {
 public:
  explicit KMeansStopped(KMeansState state)
      : StageStopped("k-means", "k-means stopped after iteration " + std::to_string(state.iteration)),
        state_(std::move(state)) {}
  const KMeansState& state() const { return state_; }

 private:
  KMeansState state_;
};

struct KMeansResult {
  std::vector<float> centroids;  // k x d
  std::vector<double> objective;  // per iteration: total distance (L2) or similarity (IP)
  int empty_clusters_split = 0;
};

// Collective. `local` holds this rank's n_local rows of the sample (d floats each), which
// are the sample positions [offset, offset + n_local) of n_total, with offset a multiple of
// kBlockRows (stages/batches.h: cluster::block_row_range gives such parts). Requires
// n_total >= k.
// Result identical on every rank. Throws KMeansStopped (every rank alike) when stopped, and
// std::invalid_argument for a resume state that does not fit.
KMeansResult distributed_kmeans(cluster::Comm& comm, const float* local, int64_t n_local,
                                int64_t offset, int64_t n_total, int d,
                                const KMeansOptions& options);

}  // namespace sf::stages
