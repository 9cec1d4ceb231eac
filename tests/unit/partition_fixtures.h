// What the partition unit tests share: a small trained, filled IVF index and a skewed query
// workload, both deterministic.
#pragma once

#include <faiss/Index.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/index_file.h"
#include "stages/ivf_index.h"

namespace sf::stages {

inline constexpr int kDim = 16;

// A trained, filled index of `factory` over x (ids = row numbers). One thread: deterministic.
inline std::unique_ptr<faiss::Index> build(const std::string& factory, const std::vector<float>& x,
                                           std::vector<char>* empty = nullptr,
                                           bool inner_product = false) {
  omp_set_num_threads(1);
  std::unique_ptr<faiss::Index> index = make_ivf_index(kDim, factory, inner_product);
  const auto n = static_cast<int64_t>(x.size() / kDim);
  index->train(n, x.data());
  if (empty != nullptr) *empty = io::serialize_index(*index);
  std::vector<faiss::Index::idx_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  index->add_with_ids(n, x.data(), ids.data());
  return index;
}

// `nq` queries near row `centre` of x: a skewed workload (all from one region).
inline std::vector<float> skewed_queries(const std::vector<float>& x, int64_t centre, int64_t nq,
                                         uint64_t seed) {
  const auto n = static_cast<int64_t>(x.size() / kDim);
  std::vector<std::pair<float, int64_t>> by_distance(n);
  for (int64_t i = 0; i < n; ++i)
    by_distance[i] = {faiss::fvec_L2sqr(&x[i * kDim], &x[centre * kDim], kDim), i};
  std::sort(by_distance.begin(), by_distance.end());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::vector<float> q(static_cast<size_t>(nq) * kDim);
  for (int64_t i = 0; i < nq; ++i)
    for (int j = 0; j < kDim; ++j)
      q[i * kDim + j] = x[by_distance[i % (n / 10)].second * kDim + j] + noise(rng);
  return q;
}

}  // namespace sf::stages
