// Distributed k-means for the coarse quantizer, and the rank-independent training sample.
//
// Determinism: the sample is chosen from global row ids and the seed only; each rank sums
// its points' coordinates in 64-bit fixed point, so the MPI_Allreduce of partial sums is
// exact and the centroids are bit-identical for any number of ranks.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/comm.h"

namespace sf::stages {

// `count` distinct ids from [0, rows), sorted, chosen by `seed` alone (Floyd's algorithm
// over a SplitMix64 stream). All of them when count >= rows. No MPI.
std::vector<int64_t> choose_sample(int64_t rows, int64_t count, uint64_t seed);

struct KMeansOptions {
  int k = 0;
  int iterations = 10;
  uint64_t seed = 1234;
  bool inner_product = false;  // assign by max inner product, normalise centroids (spherical)
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
// Result identical on every rank.
KMeansResult distributed_kmeans(cluster::Comm& comm, const float* local, int64_t n_local,
                                int64_t offset, int64_t n_total, int d,
                                const KMeansOptions& options);

}  // namespace sf::stages
