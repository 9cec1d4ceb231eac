#include "stages/kmeans.h"

#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/mix64.h"

#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_set>

#include "cluster/archive.h"

BOOST_CLASS_VERSION(sf::stages::KMeansState, sf::stages::kKMeansStateFormatVersion)

namespace sf::stages {
namespace {

// SplitMix64: a tiny generator whose stream is fixed by its seed on every platform
// (std:: distributions are implementation-defined, so they are not used for sampling).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, bound) (bound > 0), by rejection: no modulo bias.
  uint64_t below(uint64_t bound) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t v;
    do v = next(); while (v >= limit);
    return v % bound;
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

constexpr float kSplitEps = 1.0f / 1024.0f;  // as FAISS's Clustering split_clusters

// Fixed-point scale 2^s such that n_total values of magnitude <= max_abs sum without
// overflowing int64.
double fixed_point_scale(double max_abs, int64_t n_total) {
  if (!(max_abs > 0.0)) return 1.0;
  const int value_bits = static_cast<int>(std::ceil(std::log2(max_abs))) + 1;
  const int count_bits = static_cast<int>(std::ceil(std::log2(static_cast<double>(n_total) + 1)));
  const int frac_bits = 62 - value_bits - count_bits;
  return std::ldexp(1.0, std::min(frac_bits, 1000));
}

void normalize_rows(float* x, int64_t n, int d) {
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int j = 0; j < d; ++j) norm += static_cast<double>(x[i * d + j]) * x[i * d + j];
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int j = 0; j < d; ++j) x[i * d + j] *= inv;
    }
  }
}

// Redefines empty centroids by splitting populated ones chosen with probability
// proportional to their size, as FAISS does; driven by a seeded generator so every rank
// makes the same choice.
int split_empty_clusters(std::vector<float>& centroids, std::vector<int64_t>& counts, int d,
                         int64_t n_total, uint64_t seed) {
  const int k = static_cast<int>(counts.size());
  SplitMix64 rng(seed);
  int splits = 0;
  for (int ci = 0; ci < k; ++ci) {
    if (counts[ci] != 0) continue;
    int cj = 0;
    for (;; cj = (cj + 1) % k) {
      const double p = (static_cast<double>(counts[cj]) - 1.0) / static_cast<double>(n_total - k);
      if (rng.unit() < p) break;
    }
    std::memcpy(&centroids[static_cast<size_t>(ci) * d], &centroids[static_cast<size_t>(cj) * d],
                sizeof(float) * d);
    for (int j = 0; j < d; ++j) {
      const bool even = j % 2 == 0;
      centroids[static_cast<size_t>(ci) * d + j] *= even ? 1 + kSplitEps : 1 - kSplitEps;
      centroids[static_cast<size_t>(cj) * d + j] *= even ? 1 - kSplitEps : 1 + kSplitEps;
    }
    counts[ci] = counts[cj] / 2;
    counts[cj] -= counts[ci];
    ++splits;
  }
  return splits;
}

// Collective: the sum of every rank's per-block values, added in global block order (ranks
// hold increasing block ranges), so the double result is the same for any ranks or threads.
double sum_in_block_order(cluster::Comm& comm, const std::vector<double>& per_block) {
  const auto* raw = reinterpret_cast<const char*>(per_block.data());
  const std::vector<cluster::Bytes> all =
      comm.allgather(cluster::Bytes(raw, raw + per_block.size() * sizeof(double)));
  double total = 0;
  for (const cluster::Bytes& part : all) {
    for (size_t at = 0; at < part.size(); at += sizeof(double)) {
      double value;
      std::memcpy(&value, part.data() + at, sizeof(double));
      total += value;
    }
  }
  return total;
}

// The first bytes of a version 1 ("SFKM") state.
constexpr char kSfkmMagic[4] = {'S', 'F', 'K', 'M'};

}  // namespace

// One field list for writing and reading (Boost.Serialization, found by ADL). Version 2 is
// the first archive; version 1 was SFKM (decode_kmeans_state refuses it by its magic).
template <class Archive>
void serialize(Archive& ar, KMeansState& state, unsigned version) {
  if (Archive::is_loading::value) cluster::check_version<KMeansState>(version, 2);
  ar & state.k & state.d & state.iteration & state.empty_clusters_split;
  ar & state.centroids & state.objective;
}

cluster::Bytes encode_kmeans_state(const KMeansState& state) { return cluster::to_bytes(state); }

KMeansState decode_kmeans_state(const cluster::Bytes& bytes) {
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), kSfkmMagic, 4) == 0)
    throw cluster::ArchiveVersionError(
        "k-means state: format version 1 (SFKM), written by an older shardforge; this build "
        "reads version " + std::to_string(kKMeansStateFormatVersion));
  KMeansState state = cluster::from_bytes<KMeansState>(bytes, "k-means state");
  if (state.k <= 0 || state.d <= 0 || state.iteration < 0 ||
      state.centroids.size() != static_cast<size_t>(state.k) * static_cast<size_t>(state.d) ||
      state.objective.size() != static_cast<size_t>(state.iteration))
    throw std::runtime_error("k-means state: k " + std::to_string(state.k) + ", d " +
                             std::to_string(state.d) + ", iteration " +
                             std::to_string(state.iteration) + " do not match its " +
                             std::to_string(state.centroids.size()) + " centroid values and " +
                             std::to_string(state.objective.size()) + " objective values");
  return state;
}

std::vector<int64_t> choose_sample(int64_t rows, int64_t count, uint64_t seed) {
  std::vector<int64_t> ids;
  if (count >= rows) {
    ids.resize(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) ids[i] = i;
    return ids;
  }
  // Floyd: for j in [rows - count, rows): pick t in [0, j]; take t unless taken, else j.
  std::unordered_set<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(count) * 2);
  SplitMix64 rng(seed);
  for (int64_t j = rows - count; j < rows; ++j) {
    const auto t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j) + 1));
    chosen.insert(chosen.count(t) ? j : t);
  }
  ids.assign(chosen.begin(), chosen.end());
  std::sort(ids.begin(), ids.end());
  return ids;
}

KMeansResult distributed_kmeans(cluster::Comm& comm, const float* local, int64_t n_local,
                                int64_t offset, int64_t n_total, int d,
                                const KMeansOptions& options) {
  const int k = options.k;
  if (k <= 0) throw std::invalid_argument("k-means: k must be positive");
  if (n_local > 0 && offset % kBlockRows != 0)
    throw std::invalid_argument("k-means: the local sample must start on a block boundary");
  if (n_total < k)
    throw std::invalid_argument("k-means: " + std::to_string(n_total) +
                                " training points for " + std::to_string(k) + " centroids");
  KMeansResult result;
  int first_iteration = 0;
  if (const KMeansState* saved = options.resume) {
    // Same on every rank (it is the state every rank held when they stopped).
    if (saved->k != k || saved->d != d || saved->iteration < 0 ||
        saved->iteration > options.iterations ||
        saved->centroids.size() != static_cast<size_t>(k) * d ||
        saved->objective.size() != static_cast<size_t>(saved->iteration))
      throw std::invalid_argument(
          "k-means: the saved state (k " + std::to_string(saved->k) + ", d " +
          std::to_string(saved->d) + ", after iteration " + std::to_string(saved->iteration) +
          ") does not fit this run (k " + std::to_string(k) + ", d " + std::to_string(d) + ", " +
          std::to_string(options.iterations) + " iterations)");
    result.centroids = saved->centroids;
    result.objective = saved->objective;
    result.empty_clusters_split = saved->empty_clusters_split;
    first_iteration = saved->iteration;
  } else {
    // Initial centroids: k sample positions chosen by the seed; each rank fills the rows it
    // holds and an exact sum (x + 0 = x) spreads them.
    std::vector<double> init(static_cast<size_t>(k) * d, 0.0);
    const std::vector<int64_t> picks = choose_sample(n_total, k, options.seed ^ 0x6b6d65616e73ULL);
    for (int c = 0; c < k; ++c) {
      const int64_t pos = picks[c] - offset;
      if (pos < 0 || pos >= n_local) continue;
      for (int j = 0; j < d; ++j) init[static_cast<size_t>(c) * d + j] = local[pos * d + j];
    }
    comm.allreduce_sum(init.data(), init.size());
    result.centroids.assign(init.begin(), init.end());
    if (options.inner_product) normalize_rows(result.centroids.data(), k, d);
  }

  double max_abs = 0;
  for (int64_t i = 0; i < n_local * d; ++i) max_abs = std::max(max_abs, std::fabs(double(local[i])));
  const double scale = fixed_point_scale(comm.max(max_abs), n_total);

  // Rows are assigned one block of kBlockRows at a time (blocks aligned to global sample
  // positions), each block by one OpenMP thread with single-threaded BLAS: every GEMM has the
  // same shape whatever the number of ranks or threads, and independent GEMMs also scale
  // better than one GEMM split across threads. Integer partial sums make the order of the
  // blocks irrelevant to the result.
  const int64_t blocks = (n_local + kBlockRows - 1) / kBlockRows;
  const int threads = block_team_size(blocks);
  std::vector<std::vector<int64_t>> block_sums(threads, std::vector<int64_t>(static_cast<size_t>(k) * d));
  std::vector<std::vector<int64_t>> block_counts(threads, std::vector<int64_t>(k));
  std::vector<double> block_objective(static_cast<size_t>(blocks));  // one per local block
  std::vector<int64_t> sums(static_cast<size_t>(k) * d);
  std::vector<int64_t> counts(k);
  std::vector<float> distances(static_cast<size_t>(n_local));
  std::vector<float> centroid_norms(k);
  std::vector<int64_t> labels(static_cast<size_t>(n_local));
  // Iteration `iter` depends only on the centroids and its own split seed (options.seed + 1 +
  // iter), so the state at its start is all a resumed run needs.
  for (int iter = first_iteration;; ++iter) {
    if (agree_to_stop(comm, "k-means", options.stop_requested))
      throw KMeansStopped({k, d, iter, result.centroids, result.objective,
                           result.empty_clusters_split});
    if (iter >= options.iterations) break;
    // FAISS's brute-force k-NN, called per block with the centroid norms computed once per
    // iteration (IndexFlat::search would recompute them for every block).
    const float* centroids = result.centroids.data();
    if (!options.inner_product)
      faiss::fvec_norms_L2sqr(centroid_norms.data(), centroids, d, k);
    for (int t = 0; t < threads; ++t) {
      std::fill(block_sums[t].begin(), block_sums[t].end(), 0);
      std::fill(block_counts[t].begin(), block_counts[t].end(), 0);
    }
    // Each block with single-threaded BLAS (stages/block_parallel.h), also when this rank
    // holds one block: a team of one thread would otherwise let OpenBLAS split its GEMM.
    parallel_blocks(blocks, [&](int64_t b, int t) {
      std::vector<int64_t>& sum_t = block_sums[t];
      std::vector<int64_t>& count_t = block_counts[t];
      const int64_t first = b * kBlockRows, n = std::min(kBlockRows, n_local - first);
      if (options.inner_product)
        faiss::knn_inner_product(local + first * d, centroids, d, n, k, 1,
                                 distances.data() + first, labels.data() + first);
      else
        faiss::knn_L2sqr(local + first * d, centroids, d, n, k, 1, distances.data() + first,
                         labels.data() + first, centroid_norms.data());
      double objective_b = 0;
      for (int64_t i = first; i < first + n; ++i) {
        const int64_t c = labels[i];
        objective_b += distances[i];
        ++count_t[c];
        int64_t* sum = &sum_t[static_cast<size_t>(c) * d];
        const float* x = local + i * d;
        for (int j = 0; j < d; ++j) sum[j] += static_cast<int64_t>(static_cast<double>(x[j]) * scale);
      }
      block_objective[static_cast<size_t>(b)] = objective_b;
    });
    std::fill(sums.begin(), sums.end(), 0);
    std::fill(counts.begin(), counts.end(), 0);
    for (int t = 0; t < threads; ++t) {
      for (size_t i = 0; i < sums.size(); ++i) sums[i] += block_sums[t][i];
      for (int c = 0; c < k; ++c) counts[c] += block_counts[t][c];
    }
    comm.allreduce_sum(sums.data(), sums.size());
    comm.allreduce_sum(counts.data(), counts.size());
    result.objective.push_back(sum_in_block_order(comm, block_objective));

    for (int c = 0; c < k; ++c) {
      if (counts[c] == 0) continue;
      const double denom = static_cast<double>(counts[c]) * scale;
      for (int j = 0; j < d; ++j)
        result.centroids[static_cast<size_t>(c) * d + j] =
            static_cast<float>(static_cast<double>(sums[static_cast<size_t>(c) * d + j]) / denom);
    }
    result.empty_clusters_split +=
        split_empty_clusters(result.centroids, counts, d, n_total, options.seed + 1 + iter);
    if (options.inner_product) normalize_rows(result.centroids.data(), k, d);
    report(options.progress, "k-means", iter + 1, options.iterations);
  }
  return result;
}

}  // namespace sf::stages
