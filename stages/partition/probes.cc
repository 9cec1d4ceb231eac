#include "stages/partition/probes.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "stages/block_parallel.h"

namespace sf::stages {

namespace {

// The nprobe nearest lists of queries [0, n), in batches: fn(first query, count, labels).
template <class Fn>
void for_each_probe_batch(const faiss::Index& quantizer, const float* queries, int64_t n, int p,
                          Fn fn) {
  constexpr int64_t kBatch = 4096;
  std::vector<float> dis;
  std::vector<faiss::Index::idx_t> lab;
  for (int64_t off = 0; off < n; off += kBatch) {
    const int64_t m = std::min(kBatch, n - off);
    dis.resize(static_cast<size_t>(m) * p);
    lab.resize(static_cast<size_t>(m) * p);
    {
      const SingleThreadedBlas one;  // the same lists for any thread count (block_parallel.h)
      quantizer.search(m, queries + off * quantizer.d, p, dis.data(), lab.data());
    }
    fn(off, m, lab.data());
  }
}

void check_weights(const char* what, const std::vector<float>& weights, int64_t n) {
  if (!weights.empty() && static_cast<int64_t>(weights.size()) != n)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(weights.size()) +
                                " weights for " + std::to_string(n) + " queries");
}

}  // namespace

std::vector<double> access_frequency(const faiss::Index& quantizer, const float* queries, int64_t n,
                                     const std::vector<float>& weights, int nprobe) {
  const int64_t nlist = quantizer.ntotal;
  check_weights("access_frequency", weights, n);
  std::vector<double> access(static_cast<size_t>(nlist), 0.0);
  const int p = static_cast<int>(std::min<int64_t>(nprobe, nlist));
  double total = 0;
  for_each_probe_batch(
      quantizer, queries, n, p, [&](int64_t off, int64_t m, const faiss::Index::idx_t* lab) {
        for (int64_t i = 0; i < m; ++i) {
          const double w = weights.empty() ? 1.0 : static_cast<double>(weights[off + i]);
          total += w;
          for (int t = 0; t < p; ++t)
            if (lab[i * p + t] >= 0) access[lab[i * p + t]] += w;
        }
      });
  if (total > 0)
    for (double& a : access) a /= total;
  return access;
}

ProbedLists probed_lists(const faiss::Index& quantizer, const float* queries, int64_t n,
                         const std::vector<float>& weights, int nprobe, int64_t max_queries) {
  check_weights("probed_lists", weights, n);
  ProbedLists out;
  out.nprobe = static_cast<int>(std::min<int64_t>(nprobe, quantizer.ntotal));
  const int64_t m = std::min(n, std::max<int64_t>(0, max_queries));
  // Every (n / m)-th query: a workload file ordered by topic or weight is still sampled whole.
  const size_t d = static_cast<size_t>(quantizer.d);
  std::vector<float> sample(static_cast<size_t>(m) * d);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t row = i * n / m;
    std::copy(queries + row * d, queries + (row + 1) * d, sample.begin() + i * d);
    out.weights.push_back(weights.empty() ? 1.0 : static_cast<double>(weights[row]));
  }
  out.lists.reserve(static_cast<size_t>(m) * out.nprobe);
  for_each_probe_batch(quantizer, sample.data(), m, out.nprobe,
                       [&](int64_t, int64_t count, const faiss::Index::idx_t* lab) {
                         out.lists.insert(out.lists.end(), lab, lab + count * out.nprobe);
                       });
  return out;
}

ProbeCurve probe_curve(const faiss::Index& quantizer, const float* queries, int64_t nq,
                       const std::vector<float>& weights,
                       const std::vector<int64_t>& neighbour_lists, int k,
                       const std::vector<int64_t>& sizes, const ScanCost& lambda, int max_nprobe) {
  const int64_t nlist = quantizer.ntotal;
  const int p = static_cast<int>(std::min<int64_t>(max_nprobe, nlist));
  if (neighbour_lists.size() != static_cast<size_t>(nq) * k ||
      sizes.size() != static_cast<size_t>(nlist) ||
      (!weights.empty() && weights.size() != static_cast<size_t>(nq)))
    throw std::invalid_argument("probe_curve: sizes do not match");
  ProbeCurve curve;
  curve.recall.assign(p, 0.0);
  curve.cost.assign(p, 0.0);
  if (p < 1 || nq == 0) return curve;
  std::vector<float> dis(static_cast<size_t>(nq) * p);
  std::vector<faiss::Index::idx_t> lab(static_cast<size_t>(nq) * p);
  {
    const SingleThreadedBlas one;  // the same lists for any thread count (block_parallel.h)
    quantizer.search(nq, queries, p, dis.data(), lab.data());
  }
  double total = 0;
  std::vector<int> rank(static_cast<size_t>(nlist), -1);
  std::vector<double> hits(p);
  for (int64_t q = 0; q < nq; ++q) {
    const double w = weights.empty() ? 1.0 : static_cast<double>(weights[q]);
    total += w;
    for (int t = 0; t < p; ++t)
      if (lab[q * p + t] >= 0) rank[lab[q * p + t]] = t;
    // hits[t]: neighbours first found at probe t.
    std::fill(hits.begin(), hits.end(), 0.0);
    int known = 0;
    for (int i = 0; i < k; ++i) {
      const int64_t l = neighbour_lists[q * k + i];
      if (l < 0) continue;
      ++known;
      if (rank[l] >= 0) hits[rank[l]] += 1;
    }
    double found = 0, cost = 0;
    for (int t = 0; t < p; ++t) {
      const int64_t l = lab[q * p + t];
      if (l >= 0 && sizes[l] > 0) cost += lambda(static_cast<double>(sizes[l]));
      found += hits[t];
      curve.recall[t] += w * (known > 0 ? found / known : 1.0);
      curve.cost[t] += w * cost;
    }
    for (int t = 0; t < p; ++t)
      if (lab[q * p + t] >= 0) rank[lab[q * p + t]] = -1;
  }
  if (total > 0)
    for (int t = 0; t < p; ++t) {
      curve.recall[t] /= total;
      curve.cost[t] /= total;
    }
  return curve;
}

double cost_at_recall(const ProbeCurve& curve, double recall, double* nprobe) {
  for (size_t t = 0; t < curve.recall.size(); ++t) {
    if (curve.recall[t] < recall) continue;
    if (t == 0 || curve.recall[t] <= curve.recall[t - 1]) {
      *nprobe = static_cast<double>(t + 1);
      return curve.cost[t];
    }
    const double f = (recall - curve.recall[t - 1]) / (curve.recall[t] - curve.recall[t - 1]);
    *nprobe = static_cast<double>(t) + f;
    return curve.cost[t - 1] + f * (curve.cost[t] - curve.cost[t - 1]);
  }
  *nprobe = 0;
  return std::numeric_limits<double>::infinity();
}

}  // namespace sf::stages
