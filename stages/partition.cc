#include "stages/partition.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

#include "cluster/archive.h"
#include "cluster/bytes.h"
#include "io/atomic_file.h"
#include "io/index_file.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "stages/kmeans.h"
#include "stages/list_scan.h"
#include "stages/mix64.h"

namespace sf::stages {
namespace {

using cluster::Bytes;

constexpr uint64_t kSampleSalt = 0x7469657273ULL;  // "tiers"
constexpr int64_t kSamplePerList = 128;            // rows re-clustered per new list, at most
constexpr int64_t kColocateQueries = 4096;         // workload queries co-location looks at
constexpr int kRefinePasses = 8;                   // ... and its passes of single-list moves
constexpr int kCalibrationRounds = 7;              // timings per list size (median)
constexpr int64_t kRecallQueries = 1000;           // workload queries of the recall check
constexpr int kRecallK = 10;                       // ... and their recall@10

// SplitMix64 (one step): a row's pseudo-random draw from its global id and the seed.
uint64_t mix(uint64_t z) { return mix64(z + 0x9E3779B97F4A7C15ULL); }

// A flat index over `centroids` with the metric of `ivf`, to assign rows to them.
std::unique_ptr<faiss::Index> flat_over(const faiss::IndexIVF& ivf, const float* centroids,
                                        int64_t n) {
  std::unique_ptr<faiss::Index> flat;
  if (ivf.metric_type == faiss::METRIC_INNER_PRODUCT)
    flat = std::make_unique<faiss::IndexFlatIP>(ivf.d);
  else
    flat = std::make_unique<faiss::IndexFlatL2>(ivf.d);
  flat->add(n, centroids);
  return flat;
}

// The true k nearest rows of a few queries among the rows offered so far, with each row's list
// and IVF-space vector. Candidates come from FAISS's flat search (GEMM) with a margin, and are
// ranked by the exact distance (fvec_L2sqr / fvec_inner_product; ties: smaller id), so the
// result does not depend on how the rows were split into batches or ranks.
class NearestRows {
 public:
  NearestRows(int64_t nq, int d, int d_ivf, bool inner_product, std::vector<float> queries)
      : nq_(nq), d_(d), d_ivf_(d_ivf), ip_(inner_product), queries_(std::move(queries)),
        found_(static_cast<size_t>(nq)) {}

  // Rows first .. first + n - 1: x (original space), xt (IVF space), their lists.
  void offer(int64_t first, int64_t n, const float* x, const float* xt,
             const faiss::Index::idx_t* lists) {
    if (nq_ == 0 || n == 0) return;
    std::unique_ptr<faiss::Index> flat;
    if (ip_)
      flat = std::make_unique<faiss::IndexFlatIP>(d_);
    else
      flat = std::make_unique<faiss::IndexFlatL2>(d_);
    flat->add(n, x);
    const int64_t m = std::min<int64_t>(2 * kRecallK, n);
    std::vector<float> dis(static_cast<size_t>(nq_ * m));
    std::vector<faiss::Index::idx_t> rows(static_cast<size_t>(nq_ * m));
    flat->search(nq_, queries_.data(), m, dis.data(), rows.data());
    for (int64_t q = 0; q < nq_; ++q)
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = rows[q * m + r];
        if (i < 0) continue;
        const float* qv = queries_.data() + q * d_;
        Candidate c;
        c.dis = ip_ ? faiss::fvec_inner_product(qv, x + i * d_, d_)
                    : faiss::fvec_L2sqr(qv, x + i * d_, d_);
        c.id = first + i;
        if (!wanted(q, c)) continue;  // before copying the vector
        c.list = lists[i];
        c.vector.assign(xt + i * d_ivf_, xt + (i + 1) * d_ivf_);
        consider(q, std::move(c));
      }
  }

  void pack(Bytes& out) const {
    cluster::ByteWriter w(out);
    for (const auto& f : found_) {
      w.value<int32_t>(static_cast<int32_t>(f.size()));
      for (const Candidate& c : f) {
        w.value(c.dis);
        w.value(c.id);
        w.value(c.list);
        w.array(c.vector.data(), c.vector.size());
      }
    }
  }
  void merge(const Bytes& in) {
    cluster::ByteReader r(in, "partition: nearest rows");
    for (int64_t q = 0; q < nq_; ++q) {
      const int n = r.value<int32_t>();
      for (int i = 0; i < n; ++i) {
        Candidate c;
        c.dis = r.value<float>();
        c.id = r.value<int64_t>();
        c.list = r.value<faiss::Index::idx_t>();
        c.vector.resize(static_cast<size_t>(d_ivf_));
        r.array(c.vector.data(), c.vector.size());
        consider(q, std::move(c));
      }
    }
  }

  // nq x kRecallK: the list of each query's neighbours (-1 where fewer rows exist).
  std::vector<int64_t> lists() const {
    std::vector<int64_t> out(static_cast<size_t>(nq_) * kRecallK, -1);
    for (int64_t q = 0; q < nq_; ++q)
      for (size_t i = 0; i < found_[q].size(); ++i) out[q * kRecallK + i] = found_[q][i].list;
    return out;
  }
  // The lists the neighbours fall in under other centroids (`quantizer`).
  std::vector<int64_t> lists_under(const faiss::Index& quantizer) const {
    std::vector<float> v;
    std::vector<size_t> at;
    for (int64_t q = 0; q < nq_; ++q)
      for (size_t i = 0; i < found_[q].size(); ++i) {
        v.insert(v.end(), found_[q][i].vector.begin(), found_[q][i].vector.end());
        at.push_back(static_cast<size_t>(q * kRecallK) + i);
      }
    std::vector<faiss::Index::idx_t> a(at.size());
    if (!at.empty()) quantizer.assign(static_cast<int64_t>(at.size()), v.data(), a.data());
    std::vector<int64_t> out(static_cast<size_t>(nq_) * kRecallK, -1);
    for (size_t i = 0; i < at.size(); ++i) out[at[i]] = a[i];
    return out;
  }

 private:
  struct Candidate {
    float dis = 0;
    int64_t id = 0;
    faiss::Index::idx_t list = -1;
    std::vector<float> vector;
  };
  bool better(const Candidate& a, const Candidate& b) const {
    if (a.dis != b.dis) return ip_ ? a.dis > b.dis : a.dis < b.dis;
    return a.id < b.id;
  }
  bool wanted(int64_t q, const Candidate& c) const {
    const auto& f = found_[q];
    for (const Candidate& have : f)
      if (have.id == c.id) return false;
    return static_cast<int>(f.size()) < kRecallK || better(c, f.back());
  }
  void consider(int64_t q, Candidate c) {
    if (!wanted(q, c)) return;
    auto& f = found_[q];
    auto at = std::upper_bound(f.begin(), f.end(), c,
                               [&](const Candidate& a, const Candidate& b) { return better(a, b); });
    f.insert(at, std::move(c));
    if (static_cast<int>(f.size()) > kRecallK) f.pop_back();
  }

  int64_t nq_;
  int d_, d_ivf_;
  bool ip_;
  std::vector<float> queries_;
  std::vector<std::vector<Candidate>> found_;
};

// Rank 0's decision after re-clustering the tiers, sent to every rank.
struct NewCentroids {
  bool apply = false;
  int nlist = 0;
  std::vector<float> centroids;  // nlist x d_ivf, when applied
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & apply & nlist & centroids;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Cost model.

std::vector<float> to_ivf_space(const faiss::Index& index, int64_t n, const float* x) {
  const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index);
  if (pt == nullptr) return std::vector<float>(x, x + n * index.d);
  const int d_in = pt->d, d_out = pt->index->d;
  std::vector<float> out(static_cast<size_t>(n) * d_out);
  const SingleThreadedBlas one;  // a split GEMM would round differently per thread count
  for (int64_t off = 0; off < n; off += kBlockRows) {
    const int64_t m = std::min(kBlockRows, n - off);
    std::unique_ptr<const float[]> block(pt->apply_chain(m, x + off * d_in));
    std::copy(block.get(), block.get() + m * d_out, out.begin() + off * d_out);
  }
  return out;
}

ScanCost calibrate_scan_cost(const faiss::Index& index, uint64_t seed) {
  std::unique_ptr<faiss::Index> copy = io::deserialize_index(io::serialize_index(index));
  faiss::IndexIVF& ivf = ivf_of(*copy, "partition");
  const int d = static_cast<int>(ivf.d);
  const std::vector<int64_t> sizes = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  constexpr int kQueries = 32;
  const int64_t max_size = sizes.back();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(max_size) * d), q(static_cast<size_t>(kQueries) * d);
  // Rows near centroid 0 (so residual codecs see realistic residuals).
  std::vector<float> c0(d);
  ivf.quantizer->reconstruct(0, c0.data());
  for (int64_t i = 0; i < max_size; ++i)
    for (int j = 0; j < d; ++j) x[i * d + j] = c0[j] + normal(rng);
  for (int i = 0; i < kQueries; ++i)
    for (int j = 0; j < d; ++j) q[static_cast<size_t>(i) * d + j] = c0[j] + normal(rng);
  std::vector<faiss::Index::idx_t> list_nos(max_size, 0), ids(max_size);
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<uint8_t> codes(static_cast<size_t>(max_size) * ivf.code_size);
  ivf.encode_vectors(max_size, x.data(), list_nos.data(), codes.data());

  const std::vector<int64_t> which = [&] {
    std::vector<int64_t> w(kQueries);
    std::iota(w.begin(), w.end(), 0);
    return w;
  }();
  const std::vector<float> coarse(kQueries, 0.0f);
  std::vector<std::unique_ptr<faiss::ArrayInvertedLists>> lists;
  std::vector<std::unique_ptr<BatchScanner>> scanners;
  for (int64_t s : sizes) {
    lists.push_back(std::make_unique<faiss::ArrayInvertedLists>(1, ivf.code_size));
    lists.back()->add_entries(0, static_cast<size_t>(s), ids.data(), codes.data());
    scanners.push_back(std::make_unique<BatchScanner>(ivf, 10, kQueries, q.data()));
    scanners.back()->scan_list(*lists.back(), 0, which, coarse);  // warm-up: scanners, caches
  }
  // Rounds over all sizes (a burst of load hits every size alike, not one), each timing
  // >= 1 ms of repeated scans; the median of each size's timings.
  std::vector<std::vector<double>> timings(sizes.size());
  for (int round = 0; round < kCalibrationRounds; ++round)
    for (size_t i = 0; i < sizes.size(); ++i) {
      int reps = 0;
      const auto start = std::chrono::steady_clock::now();
      double elapsed = 0;
      do {
        scanners[i]->scan_list(*lists[i], 0, which, coarse);
        ++reps;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      } while (elapsed < 1e-3);
      timings[i].push_back(elapsed / (reps * static_cast<double>(kQueries)));
    }
  return fit_scan_cost_rounds(sizes, timings);
}

ScanCost fit_scan_cost_rounds(const std::vector<int64_t>& sizes,
                              std::vector<std::vector<double>> timings) {
  if (timings.size() != sizes.size())
    throw std::invalid_argument("fit_scan_cost_rounds: needs one list of timings per size");
  std::vector<double> seconds;
  for (auto& t : timings) {
    if (t.empty()) throw std::invalid_argument("fit_scan_cost_rounds: a size without timings");
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    seconds.push_back(t[t.size() / 2]);
  }
  return fit_scan_cost(sizes, seconds);
}

ScanCost fit_scan_cost(const std::vector<int64_t>& sizes, const std::vector<double>& seconds) {
  if (sizes.size() < 2 || seconds.size() != sizes.size())
    throw std::invalid_argument("fit_scan_cost: needs >= 2 sizes and one time per size");
  ScanCost cost;
  cost.source = "calibrated";
  cost.sizes = sizes;
  cost.seconds = seconds;
  // Least squares on relative error (weights 1/t^2): seconds span ~2 orders of magnitude and
  // the small sizes, which carry a, would otherwise not count.
  double sw = 0, ss = 0, st = 0, sss = 0, sst = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (!(seconds[i] > 0)) throw std::invalid_argument("fit_scan_cost: a time is not > 0");
    const double w = 1.0 / (seconds[i] * seconds[i]);
    const double x = static_cast<double>(sizes[i]), t = seconds[i];
    sw += w;
    ss += w * x;
    st += w * t;
    sss += w * x * x;
    sst += w * x * t;
  }
  const double det = sw * sss - ss * ss;
  double a = det > 0 ? (sss * st - ss * sst) / det : 0;
  double b = det > 0 ? (sw * sst - ss * st) / det : 0;
  if (!(b > 0) || a < 0) {  // degenerate: through the origin at the largest size
    b = seconds.back() / static_cast<double>(sizes.back());
    a = 0;
  }
  cost.b = b;
  cost.a = b * snap_overhead_codes(a / b);
  return cost;
}

double snap_overhead_codes(double codes) {
  // Below half the smallest calibrated list (16 codes) the overhead is not resolved by the
  // timings (it flips between 0 and a few codes from run to run): 0.
  if (!(codes >= 8)) return 0;
  return std::exp2(std::round(std::log2(codes)));
}

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

double shards_per_query(const ProbedLists& probed, const std::vector<std::vector<int>>& placement) {
  double sum = 0, total = 0;
  std::vector<int> touched;
  for (int64_t q = 0; q < probed.queries(); ++q) {
    touched.clear();
    for (int t = 0; t < probed.nprobe; ++t) {
      const int64_t list = probed.lists[q * probed.nprobe + t];
      if (list < 0) continue;
      const std::vector<int>& copies = placement.at(list);
      const int shard = copies.at(static_cast<size_t>(q) % copies.size());  // as search routes
      if (std::find(touched.begin(), touched.end(), shard) == touched.end())
        touched.push_back(shard);
    }
    sum += probed.weights[q] * static_cast<double>(touched.size());
    total += probed.weights[q];
  }
  return total > 0 ? sum / total : 0;
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

std::vector<double> expected_costs(const std::vector<double>& access,
                                   const std::vector<int64_t>& sizes, const ScanCost& lambda) {
  std::vector<double> cost(access.size());
  for (size_t j = 0; j < access.size(); ++j)
    cost[j] = sizes[j] > 0 ? access[j] * lambda(static_cast<double>(sizes[j])) : 0.0;
  return cost;
}

// ---------------------------------------------------------------------------------------------
// Placement.

namespace {

// What LPT places, heaviest first (ties: smaller list id): one item per list, two of half its
// load for the `replicate` heaviest lists with a positive load when shards > 1.
struct PlacementItem {
  double load;
  int list;
};

std::vector<PlacementItem> placement_items(const std::vector<double>& load, int shards,
                                           int replicate) {
  const int n = static_cast<int>(load.size());
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return load[a] > load[b]; });
  std::vector<int> copies(n, 1);
  if (shards > 1)
    for (int i = 0; i < std::min(replicate, n); ++i)
      if (load[order[i]] > 0) copies[order[i]] = 2;
  std::vector<PlacementItem> items;
  for (int j = 0; j < n; ++j)
    for (int c = 0; c < copies[j]; ++c) items.push_back({load[j] / copies[j], j});
  std::stable_sort(items.begin(), items.end(), [](const PlacementItem& a, const PlacementItem& b) {
    return a.load > b.load || (a.load == b.load && a.list < b.list);
  });
  return items;
}

}  // namespace

std::vector<std::vector<int>> place_lpt(const std::vector<double>& load, int shards,
                                        int replicate) {
  if (shards < 1) throw std::invalid_argument("place_lpt: shards must be >= 1");
  const int n = static_cast<int>(load.size());
  const std::vector<PlacementItem> items = placement_items(load, shards, replicate);
  std::vector<double> shard_load(shards, 0.0);
  std::vector<std::vector<int>> placement(n);
  for (const PlacementItem& item : items) {
    int best = -1;
    for (int s = 0; s < shards; ++s) {
      const auto& held = placement[item.list];
      if (std::find(held.begin(), held.end(), s) != held.end()) continue;
      if (best < 0 || shard_load[s] < shard_load[best]) best = s;
    }
    placement[item.list].push_back(best);
    shard_load[best] += item.load;
  }
  return placement;
}

std::vector<std::vector<int>> place_colocated(const std::vector<double>& load,
                                              const ProbedLists& probed, int shards, int replicate,
                                              double slack) {
  if (shards < 1) throw std::invalid_argument("place_colocated: shards must be >= 1");
  const int n = static_cast<int>(load.size());
  // The queries probing each list (CSR).
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t list : probed.lists)
    if (list >= 0 && list < n) ++first[list + 1];
  for (int j = 0; j < n; ++j) first[j + 1] += first[j];
  std::vector<int64_t> probers(static_cast<size_t>(first[n]));
  {
    std::vector<int64_t> next(first.begin(), first.end() - 1);
    for (int64_t q = 0; q < probed.queries(); ++q)
      for (int t = 0; t < probed.nprobe; ++t) {
        const int64_t list = probed.lists[q * probed.nprobe + t];
        if (list >= 0 && list < n) probers[next[list]++] = q;
      }
  }
  // reach[q]: (shard, lists of query q's there) under the placement so far; a copy c of a list
  // counts for the queries q with q % copies == c, as search routes them.
  std::vector<std::vector<std::pair<int, int>>> reach(static_cast<size_t>(probed.queries()));
  const auto lists_at = [&](int64_t q, int shard) -> int& {
    for (auto& [s, count] : reach[q])
      if (s == shard) return count;
    reach[q].push_back({shard, 0});
    return reach[q].back().second;
  };
  const auto count_at = [&](int64_t q, int shard) {
    for (const auto& [s, count] : reach[q])
      if (s == shard) return count;
    return 0;
  };

  const std::vector<PlacementItem> items = placement_items(load, shards, replicate);
  std::vector<int> copies(n, 0);
  for (const PlacementItem& item : items) ++copies[item.list];
  const double cap =
      (1 + std::max(0.0, slack)) * std::accumulate(load.begin(), load.end(), 0.0) / shards;
  std::vector<double> shard_load(shards, 0.0), affinity(shards);
  std::vector<std::vector<int>> placement(n);
  for (const PlacementItem& item : items) {
    std::fill(affinity.begin(), affinity.end(), 0.0);
    const auto& held = placement[item.list];
    for (int64_t i = first[item.list]; i < first[item.list + 1]; ++i) {
      if (static_cast<size_t>(probers[i]) % copies[item.list] != held.size()) continue;
      for (const auto& [s, count] : reach[probers[i]])
        if (count > 0) affinity[s] += probed.weights[probers[i]];
    }
    int best = -1, least = -1;
    for (int s = 0; s < shards; ++s) {
      if (std::find(held.begin(), held.end(), s) != held.end()) continue;
      if (least < 0 || shard_load[s] < shard_load[least]) least = s;
      if (shard_load[s] + item.load > cap) continue;
      if (best < 0 || affinity[s] > affinity[best] ||
          (affinity[s] == affinity[best] && shard_load[s] < shard_load[best]))
        best = s;
    }
    if (best < 0) best = least;
    placement[item.list].push_back(best);
    shard_load[best] += item.load;
    const size_t c = held.size() - 1;  // this copy
    for (int64_t i = first[item.list]; i < first[item.list + 1]; ++i)
      if (static_cast<size_t>(probers[i]) % copies[item.list] == c) ++lists_at(probers[i], best);
  }

  // Refinement: a list of one copy moves to the shard that most lowers the weighted count of
  // (query, shard) pairs, within the cap, until a pass moves none. The greedy fills a shard up
  // to the cap and then has to split the rest of a group of lists; moves mend some of that.
  std::vector<double> leave_gain(shards);
  for (int pass = 0; pass < kRefinePasses; ++pass) {
    bool moved = false;
    for (const PlacementItem& item : items) {
      const int j = item.list;
      if (placement[j].size() != 1) continue;
      const int from = placement[j][0];
      // Pairs saved by leaving `from`, minus pairs added at each other shard.
      double saved = 0;
      std::fill(leave_gain.begin(), leave_gain.end(), 0.0);
      for (int64_t i = first[j]; i < first[j + 1]; ++i) {
        const int64_t q = probers[i];
        const double w = probed.weights[q];
        if (count_at(q, from) == 1) saved += w;
        for (int t = 0; t < shards; ++t)
          if (t != from && count_at(q, t) == 0) leave_gain[t] += w;
      }
      int to = -1;
      double best_gain = 1e-12 * (1 + saved);
      for (int t = 0; t < shards; ++t) {
        if (t == from || shard_load[t] + load[j] > cap) continue;
        const double gain = saved - leave_gain[t];
        if (gain > best_gain) best_gain = gain, to = t;
      }
      if (to < 0) continue;
      for (int64_t i = first[j]; i < first[j + 1]; ++i) {
        --lists_at(probers[i], from);
        ++lists_at(probers[i], to);
      }
      shard_load[from] -= load[j];
      shard_load[to] += load[j];
      placement[j][0] = to;
      moved = true;
    }
    if (!moved) break;
  }
  return placement;
}

std::vector<double> shard_loads(const std::vector<std::vector<int>>& placement,
                                const std::vector<double>& load, int shards) {
  std::vector<double> out(shards, 0.0);
  for (size_t j = 0; j < placement.size(); ++j)
    for (int s : placement[j]) out[s] += load[j] / static_cast<double>(placement[j].size());
  return out;
}

double max_over_mean(const std::vector<double>& loads) {
  if (loads.empty()) return 1;
  const double mean =
      std::accumulate(loads.begin(), loads.end(), 0.0) / static_cast<double>(loads.size());
  if (!(mean > 0)) return 1;
  return *std::max_element(loads.begin(), loads.end()) / mean;
}

// ---------------------------------------------------------------------------------------------
// Tiers.

TierPlan plan_tiers(const std::vector<double>& access, const std::vector<int64_t>& sizes, int tiers,
                    int nlist_after, int64_t min_list_size) {
  const int n = static_cast<int>(sizes.size());
  const double total = std::accumulate(access.begin(), access.end(), 0.0);
  int t_count = std::max(1, tiers);
  TierPlan plan;
  plan.tier_of_list.assign(n, 0);
  if (!(total > 0)) t_count = 1;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto density = [&](int j) {
    return sizes[j] > 0 ? access[j] / static_cast<double>(sizes[j]) : 0.0;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return density(a) > density(b); });
  // A list's tier: where its share of the access mass starts (a list holding more than one
  // tier's mass does not leave tiers empty before it).
  double cum = 0;
  std::vector<int> raw(n);
  for (int j : order) {
    raw[j] = access[j] > 0 && total > 0
                 ? std::min(t_count - 1, static_cast<int>(cum / total * t_count))
                 : t_count - 1;
    cum += access[j];
  }
  // Renumber the tiers that hold lists, hottest first.
  std::vector<int> renum(t_count, -1);
  int used = 0;
  for (int j : order)
    if (renum[raw[j]] < 0) renum[raw[j]] = -2;
  for (int t = 0; t < t_count; ++t)
    if (renum[t] == -2) renum[t] = used++;
  plan.access.assign(used, 0.0);
  plan.rows.assign(used, 0);
  plan.lists_before.assign(used, 0);
  for (int j = 0; j < n; ++j) {
    const int t = renum[raw[j]];
    plan.tier_of_list[j] = t;
    plan.access[t] += access[j];
    plan.rows[t] += sizes[j];
    plan.lists_before[t] += 1;
  }
  if (!(total > 0)) {
    plan.lists_after = {nlist_after};
    return plan;
  }
  // Lists per tier proportional to sqrt(Q N); at least 1 and a quarter of the tier's lists
  // today (cold tiers coarsen at most 4x), at most rows / min_list_size.
  std::vector<double> weight(used), ideal(used);
  double wsum = 0;
  for (int t = 0; t < used; ++t)
    wsum += weight[t] = std::sqrt(plan.access[t] * static_cast<double>(plan.rows[t]));
  std::vector<int> lo(used), hi(used);
  plan.lists_after.assign(used, 0);
  int given = 0;
  for (int t = 0; t < used; ++t) {
    hi[t] =
        static_cast<int>(std::max<int64_t>(1, plan.rows[t] / std::max<int64_t>(1, min_list_size)));
    lo[t] = std::min(hi[t], std::max(1, (plan.lists_before[t] + 3) / 4));
    ideal[t] = wsum > 0 ? nlist_after * weight[t] / wsum : plan.lists_before[t];
    plan.lists_after[t] = std::clamp(static_cast<int>(std::floor(ideal[t])), lo[t], hi[t]);
    given += plan.lists_after[t];
  }
  // Hand out (or take back) the remainder, largest shortfall (or excess) first.
  while (given != nlist_after) {
    int best = -1;
    double gap = 0;
    for (int t = 0; t < used; ++t) {
      const double g =
          given < nlist_after ? ideal[t] - plan.lists_after[t] : plan.lists_after[t] - ideal[t];
      const bool room =
          given < nlist_after ? plan.lists_after[t] < hi[t] : plan.lists_after[t] > lo[t];
      if (room && (best < 0 || g > gap)) {
        best = t;
        gap = g;
      }
    }
    if (best < 0) break;  // every tier at its bound
    plan.lists_after[best] += given < nlist_after ? 1 : -1;
    given += given < nlist_after ? 1 : -1;
  }
  return plan;
}

void set_coarse_centroids(faiss::Index& index, const std::vector<float>& centroids, int nlist) {
  faiss::IndexIVF& ivf = ivf_of(index, "partition");
  if (ivf.ntotal != 0) throw std::invalid_argument("set_coarse_centroids: the index is not empty");
  if (centroids.size() != static_cast<size_t>(nlist) * ivf.d)
    throw std::invalid_argument("set_coarse_centroids: wrong centroid table size");
  fill_quantizer(ivf, nlist, centroids.data());
  ivf.nlist = static_cast<size_t>(nlist);
  ivf.replace_invlists(new faiss::ArrayInvertedLists(ivf.nlist, ivf.code_size), true);
  if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(&ivf); pq != nullptr && pq->by_residual)
    pq->precompute_table();
}

// ---------------------------------------------------------------------------------------------
// The build step.

RepartitionReport repartition_lists(cluster::Comm& comm, faiss::Index& index,
                                    io::VectorCorpus& corpus, cluster::RowRange range,
                                    const Workload* workload, const PartitionOptions& options,
                                    const ProgressFn& progress) {
  RepartitionReport rep;
  faiss::IndexIVF& ivf = ivf_of(index, "partition");
  const int nlist = static_cast<int>(ivf.nlist);
  const int d_ivf = static_cast<int>(ivf.d);
  const int d = corpus.dim();
  rep.nlist_before = rep.nlist_after = nlist;

  // The scan cost, the same on every rank.
  ScanCost lambda;
  cluster::run_local_phase(comm, "partition: scan cost", [&] {
    if (comm.rank() != 0) return;
    if (options.scan_cost.size() == 2) {
      lambda.a = options.scan_cost[0];
      lambda.b = options.scan_cost[1];
      lambda.source = "config";
      if (!(lambda.b > 0)) throw std::invalid_argument("partition.scan_cost: b must be > 0");
    } else {
      lambda = calibrate_scan_cost(index, options.seed);
    }
  });
  double ab[2] = {comm.rank() == 0 ? lambda.a : 0.0, comm.rank() == 0 ? lambda.b : 0.0};
  comm.allreduce_sum(ab, 2);
  lambda.a = ab[0];
  lambda.b = ab[1];
  rep.scan_cost = lambda;
  const bool have_workload =
      comm.sum(static_cast<int64_t>(comm.rank() == 0 && workload != nullptr)) > 0;
  if (!have_workload) return rep;

  // The queries of the recall check, to every rank.
  std::vector<float> recall_queries;  // rank 0 until the broadcast
  cluster::run_local_phase(comm, "partition: recall queries", [&] {
    if (comm.rank() != 0) return;
    if (workload->queries.size() != static_cast<size_t>(workload->nq) * d)
      throw std::invalid_argument("partition: the workload's dimension differs from the corpus'");
    const int64_t nr = std::min(workload->nq, kRecallQueries);
    recall_queries.assign(workload->queries.begin(), workload->queries.begin() + nr * d);
  });
  recall_queries = cluster::broadcast_as(comm, recall_queries, 0, "partition: recall queries");
  const auto recall_nq = static_cast<int64_t>(recall_queries.size()) / d;
  NearestRows nearest(recall_nq, d, d_ivf, ivf.metric_type == faiss::METRIC_INNER_PRODUCT,
                      std::move(recall_queries));

  // Pass 1: the list of every row of this rank (as add will assign it), the list sizes, and
  // this rank's nearest rows of the recall queries.
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(range.size()));
  std::vector<int64_t> counts(nlist, 0);
  Bytes nearest_here;
  cluster::run_local_phase(comm, "partition: count lists", [&] {
    for_each_batch(
        corpus, range, options.batch_rows,
        [&](int64_t first, int64_t count, const float* x) {
          for (int64_t off = 0; off < count;) {
            const int64_t n = std::min(count - off, kBlockRows - (first + off) % kBlockRows);
            const std::vector<float> xt = to_ivf_space(index, n, x + off * d);
            faiss::Index::idx_t* l = labels.data() + (first + off - range.begin);
            {
              const SingleThreadedBlas one;  // as add assigns a block: one thread
              ivf.quantizer->assign(n, xt.data(), l);
            }
            nearest.offer(first + off, n, x + off * d, xt.data(), l);
            off += n;
          }
        },
        progress, "partition: count lists");
    for (auto l : labels) ++counts[l];
    nearest.pack(nearest_here);
  });
  comm.allreduce_sum(counts.data(), counts.size());
  {
    const std::vector<Bytes> found = comm.gather(nearest_here, 0);
    Bytes().swap(nearest_here);
    cluster::run_local_phase(comm, "partition: nearest rows", [&] {
      for (int r = 1; r < static_cast<int>(found.size()); ++r) nearest.merge(found[r]);
    });
  }

  // Rank 0 plans the tiers.
  std::vector<float> wq;  // rank 0: the workload in IVF space
  std::vector<double> access;
  std::pair<std::vector<int>, std::vector<int>> decision;  // tier of each list, lists after
  const int bound = options.max_nlist > 0 ? options.max_nlist : nlist;
  cluster::run_local_phase(comm, "partition: plan tiers", [&] {
    if (comm.rank() != 0) return;
    wq = to_ivf_space(index, workload->nq, workload->queries.data());
    access = access_frequency(*ivf.quantizer, wq.data(), workload->nq, workload->weights,
                              options.nprobe);
    TierPlan tp = plan_tiers(access, counts, options.tiers, bound, options.min_list_size);
    decision = {std::move(tp.tier_of_list), std::move(tp.lists_after)};
  });
  decision = cluster::broadcast_as(comm, decision, 0, "partition: tier plan");
  TierPlan tiers;
  {
    if (decision.first.size() != static_cast<size_t>(nlist))
      throw std::logic_error("partition: the tier plan does not cover every list");
    tiers.tier_of_list = std::move(decision.first);
    tiers.lists_after = std::move(decision.second);
    const int used = static_cast<int>(tiers.lists_after.size());
    tiers.rows.assign(used, 0);
    tiers.lists_before.assign(used, 0);
    tiers.access.assign(used, 0.0);
    for (int j = 0; j < nlist; ++j) {
      tiers.rows[tiers.tier_of_list[j]] += counts[j];
      tiers.lists_before[tiers.tier_of_list[j]] += 1;
      if (!access.empty()) tiers.access[tiers.tier_of_list[j]] += access[j];
    }
  }
  const int used = static_cast<int>(tiers.lists_after.size());
  std::vector<char> resized(used, 0);
  bool any = false;
  for (int t = 0; t < used; ++t) any |= resized[t] = tiers.lists_after[t] != tiers.lists_before[t];
  rep.tiers = tiers;
  const double before_cost = [&] {
    const auto c = expected_costs(access, counts, lambda);
    return std::accumulate(c.begin(), c.end(), 0.0);
  }();
  rep.cost_before = rep.cost_after = before_cost;
  if (!any) return rep;

  // Pass 2: a sample of the rows of each re-sized tier, chosen by global id and seed.
  std::vector<int64_t> cap(used);
  for (int t = 0; t < used; ++t) cap[t] = kSamplePerList * tiers.lists_after[t];
  Bytes mine;
  cluster::run_local_phase(comm, "partition: sample tiers", [&] {
    for_each_batch(
        corpus, range, options.batch_rows,
        [&](int64_t first, int64_t count, const float* x) {
          for (int64_t off = 0; off < count;) {
            const int64_t n = std::min(count - off, kBlockRows - (first + off) % kBlockRows);
            std::vector<float> xt;
            for (int64_t i = 0; i < n; ++i) {
              const int64_t g = first + off + i;
              const int t = tiers.tier_of_list[labels[g - range.begin]];
              if (!resized[t]) continue;
              const int64_t rows_t = tiers.rows[t];
              if (rows_t > cap[t] &&
                  static_cast<int64_t>(mix(static_cast<uint64_t>(g) ^ options.seed ^ kSampleSalt) %
                                       static_cast<uint64_t>(rows_t)) >= cap[t])
                continue;
              if (xt.empty()) xt = to_ivf_space(index, n, x + off * d);
              cluster::ByteWriter out(mine);
              out.value<int32_t>(t);
              out.array(xt.data() + i * d_ivf, static_cast<size_t>(d_ivf));
            }
            off += n;
          }
        },
        progress, "partition: sample tiers");
  });
  const std::vector<Bytes> parts = comm.gather(mine, 0);
  mine.clear();

  // Rank 0 re-clusters each re-sized tier and checks the new lists lower the expected cost.
  NewCentroids result;
  cluster::run_local_phase(comm, "partition: re-cluster tiers", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::vector<float>> rows(used);
    for (const Bytes& part : parts) {  // rank order: ascending global ids
      cluster::ByteReader in(part, "partition: tier sample");
      while (!in.done()) {
        const int t = in.value<int32_t>();
        std::vector<float>& r = rows.at(t);
        r.resize(r.size() + d_ivf);
        in.array(r.data() + r.size() - d_ivf, static_cast<size_t>(d_ivf));
      }
    }
    std::vector<float> centroids(static_cast<size_t>(nlist) * d_ivf);
    ivf.quantizer->reconstruct_n(0, nlist, centroids.data());
    // Unchanged tiers keep their centroids (in list order), re-clustered tiers follow.
    std::vector<float> next;
    for (int j = 0; j < nlist; ++j)
      if (!resized[tiers.tier_of_list[j]])
        next.insert(next.end(), centroids.begin() + static_cast<size_t>(j) * d_ivf,
                    centroids.begin() + static_cast<size_t>(j + 1) * d_ivf);
    auto serial = cluster::make_serial_comm();
    for (int t = 0; t < used; ++t) {
      if (!resized[t]) continue;
      const int64_t n = static_cast<int64_t>(rows[t].size() / d_ivf);
      KMeansOptions km;
      km.k = static_cast<int>(std::min<int64_t>(tiers.lists_after[t], n));
      km.iterations = options.kmeans_iterations;
      km.seed = options.seed + static_cast<uint64_t>(t);
      km.inner_product = ivf.metric_type == faiss::METRIC_INNER_PRODUCT;
      if (km.k < 1) continue;
      const KMeansResult r = distributed_kmeans(*serial, rows[t].data(), n, 0, n, d_ivf, km);
      next.insert(next.end(), r.centroids.begin(), r.centroids.end());
      rep.splits += std::max(0, km.k - tiers.lists_before[t]);
      rep.merges += std::max(0, tiers.lists_before[t] - km.k);
    }
    const int nlist_next = static_cast<int>(next.size() / d_ivf);

    // Estimated sizes: unchanged lists keep theirs; each sampled row stands for
    // rows_t / sample_t rows of its tier and goes to its nearest new centroid.
    std::vector<double> est(nlist_next, 0.0);
    std::unique_ptr<faiss::Index> next_flat = flat_over(ivf, next.data(), nlist_next);
    for (int j = 0, k = 0; j < nlist; ++j)
      if (!resized[tiers.tier_of_list[j]]) est[k++] = static_cast<double>(counts[j]);
    for (int t = 0; t < used; ++t) {
      const int64_t n = static_cast<int64_t>(rows[t].size() / d_ivf);
      if (!resized[t] || n == 0) continue;
      std::vector<faiss::Index::idx_t> a(static_cast<size_t>(n));
      {
        const SingleThreadedBlas one;  // the same estimate for any thread count
        next_flat->assign(n, rows[t].data(), a.data());
      }
      const double scale = static_cast<double>(tiers.rows[t]) / static_cast<double>(n);
      for (auto v : a) est[v] += scale;
    }
    std::vector<int64_t> sizes_next(nlist_next);
    for (int c = 0; c < nlist_next; ++c) sizes_next[c] = std::llround(est[c]);
    // Both layouts at equal recall on the recall queries: the k-means lists at options.nprobe
    // set the recall, the new lists need whatever nprobe reaches it.
    const int64_t nr = std::min(workload->nq, kRecallQueries);
    const std::vector<float> wr =
        workload->weights.empty()
            ? std::vector<float>{}
            : std::vector<float>(workload->weights.begin(), workload->weights.begin() + nr);
    const int p = std::max(1, std::min(options.nprobe, nlist));
    const int reach = std::max(4 * p, p + 64);
    const ProbeCurve old_curve = probe_curve(*ivf.quantizer, wq.data(), nr, wr, nearest.lists(),
                                             kRecallK, counts, lambda, p);
    const ProbeCurve new_curve =
        probe_curve(*next_flat, wq.data(), nr, wr, nearest.lists_under(*next_flat), kRecallK,
                    sizes_next, lambda, reach);
    rep.recall_queries = static_cast<int>(nr);
    rep.recall_target = old_curve.recall.back();
    rep.cost_before = old_curve.cost.back();
    const double at_recall = cost_at_recall(new_curve, rep.recall_target, &rep.nprobe_after);
    const bool reached = std::isfinite(at_recall);  // else: not within `reach` probes
    rep.cost_after = reached ? at_recall : new_curve.cost.back();
    result.apply = reached && rep.cost_after < rep.cost_before;
    if (result.apply) result.centroids = std::move(next);
    result.nlist = nlist_next;
  });
  result = cluster::broadcast_as(comm, result, 0, "partition: new centroids");
  const bool apply = result.apply;
  const int nlist_next = result.nlist;
  rep.applied = apply;
  if (!apply) {
    rep.splits = rep.merges = 0;
    rep.tiers.lists_after = rep.tiers.lists_before;
    return rep;
  }
  cluster::run_local_phase(comm, "partition: new centroids",
                           [&] { set_coarse_centroids(index, result.centroids, nlist_next); });
  rep.nlist_after = nlist_next;
  return rep;
}

// ---------------------------------------------------------------------------------------------
// The plan.

std::vector<int> PartitionPlan::lists_of_shard(int shard) const {
  std::vector<int> out;
  for (size_t j = 0; j < lists.size(); ++j)
    if (std::find(lists[j].shards.begin(), lists[j].shards.end(), shard) != lists[j].shards.end())
      out.push_back(static_cast<int>(j));
  return out;
}

PartitionPlan make_plan(const faiss::Index& index, const Workload* workload,
                        const PartitionOptions& options, const ScanCost& lambda) {
  const faiss::IndexIVF* ivf = &ivf_of(index, "make_plan");
  const int nlist = static_cast<int>(ivf->nlist);
  if (options.shards < 1 || options.shards > nlist)
    throw std::invalid_argument("partition.shards is " + std::to_string(options.shards) +
                                ", but the index has " + std::to_string(nlist) +
                                " lists: each shard owns whole lists (at most nlist shards)");
  PartitionPlan plan;
  plan.nlist = nlist;
  plan.shards = options.shards;
  plan.nprobe = options.nprobe;
  plan.scan_cost = lambda;
  std::vector<int64_t> sizes(nlist);
  for (int j = 0; j < nlist; ++j) sizes[j] = static_cast<int64_t>(ivf->invlists->list_size(j));
  std::vector<double> access;
  ProbedLists probed;
  if (workload != nullptr) {
    const std::vector<float> wq = to_ivf_space(index, workload->nq, workload->queries.data());
    access = access_frequency(*ivf->quantizer, wq.data(), workload->nq, workload->weights,
                              options.nprobe);
    if (options.colocate_slack >= 0)
      probed = probed_lists(*ivf->quantizer, wq.data(), workload->nq, workload->weights,
                            options.nprobe, kColocateQueries);
    plan.workload = workload->source;
    plan.workload_queries = workload->nq;
  } else {
    access.assign(nlist, static_cast<double>(std::min(options.nprobe, nlist)) / nlist);
  }
  const std::vector<double> cost = expected_costs(access, sizes, lambda);
  const std::vector<double> by_count(sizes.begin(), sizes.end());
  const auto count_placement = place_lpt(by_count, options.shards, options.replicate_hot);
  auto placement = count_placement;
  plan.count_balanced_max_over_mean_cost =
      max_over_mean(shard_loads(count_placement, cost, options.shards));
  plan.max_over_mean_cost = plan.count_balanced_max_over_mean_cost;
  if (workload != nullptr) {
    auto cost_placement = place_lpt(cost, options.shards, options.replicate_hot);
    const double m = max_over_mean(shard_loads(cost_placement, cost, options.shards));
    if (m <= plan.count_balanced_max_over_mean_cost) {
      placement = std::move(cost_placement);
      plan.max_over_mean_cost = m;
      plan.balance = "cost";
    }
    if (probed.queries() > 0) {
      plan.colocate_slack = options.colocate_slack;
      plan.lpt_shards_per_query = shards_per_query(probed, placement);
      plan.shards_per_query = plan.lpt_shards_per_query;
      // The greedy fills shards up to its cap, so its balance lands near 1 + slack: when that
      // is worse than count balance, tighter caps (slack / 2, / 4, then 0) are tried.
      bool tried_zero = false;
      for (double slack : {1.0, 0.5, 0.25, 0.0}) {
        slack *= options.colocate_slack;
        if (slack == 0 && tried_zero) break;  // colocate_slack 0: one try
        tried_zero = slack == 0;
        auto colocated =
            place_colocated(cost, probed, options.shards, options.replicate_hot, slack);
        const double mc = max_over_mean(shard_loads(colocated, cost, options.shards));
        const double spq = shards_per_query(probed, colocated);
        if (spq < plan.shards_per_query && mc <= plan.count_balanced_max_over_mean_cost &&
            (mc <= 1 + options.colocate_slack || mc <= plan.max_over_mean_cost)) {
          placement = std::move(colocated);
          plan.max_over_mean_cost = mc;
          plan.balance = "cost";
          plan.colocated = true;
          plan.colocate_slack = slack;
          plan.shards_per_query = spq;
          break;
        }
      }
    }
  }
  plan.lists.resize(nlist);
  for (int j = 0; j < nlist; ++j) plan.lists[j] = {sizes[j], access[j], cost[j], placement[j]};
  plan.expected_cost_per_query = std::accumulate(cost.begin(), cost.end(), 0.0);
  return plan;
}

nlohmann::json plan_to_json(const PartitionPlan& plan) {
  nlohmann::json sizes = nlohmann::json::array(), access = nlohmann::json::array(),
                 cost = nlohmann::json::array(), shards = nlohmann::json::array();
  for (const ListPlan& l : plan.lists) {
    sizes.push_back(l.size);
    access.push_back(l.access);
    cost.push_back(l.cost);
    shards.push_back(l.shards);
  }
  std::vector<double> shard_cost(plan.shards, 0.0);
  std::vector<int64_t> shard_vectors(plan.shards, 0), shard_lists(plan.shards, 0);
  for (const ListPlan& l : plan.lists)
    for (int s : l.shards) {
      shard_cost[s] += l.cost / static_cast<double>(l.shards.size());
      shard_vectors[s] += l.size;
      shard_lists[s] += 1;
    }
  nlohmann::json summary = nlohmann::json::array();
  for (int s = 0; s < plan.shards; ++s)
    summary.push_back({{"shard", s},
                       {"file", shard_file_name(s)},
                       {"lists", shard_lists[s]},
                       {"vectors", shard_vectors[s]},
                       {"expected_cost", shard_cost[s]}});
  const RepartitionReport& r = plan.repartition;
  return {
      {"format_version", kPlanFormatVersion},
      {"nlist", plan.nlist},
      {"shards", plan.shards},
      {"nprobe", plan.nprobe},
      {"balance", plan.balance},
      {"workload", {{"source", plan.workload}, {"queries", plan.workload_queries}}},
      {"scan_cost",
       {{"a_seconds", plan.scan_cost.a},
        {"b_seconds_per_code", plan.scan_cost.b},
        {"source", plan.scan_cost.source},
        {"sizes", plan.scan_cost.sizes},
        {"seconds_per_query", plan.scan_cost.seconds}}},
      {"max_over_mean_cost", plan.max_over_mean_cost},
      {"count_balanced_max_over_mean_cost", plan.count_balanced_max_over_mean_cost},
      {"expected_cost_per_query", plan.expected_cost_per_query},
      {"colocation",
       {{"applied", plan.colocated},
        {"slack", plan.colocate_slack},
        {"shards_per_query", plan.shards_per_query},
        {"lpt_shards_per_query", plan.lpt_shards_per_query}}},
      {"repartition",
       {{"nlist_before", r.nlist_before},
        {"nlist_after", r.nlist_after},
        {"splits", r.splits},
        {"merges", r.merges},
        {"tiers",
         {{"access", r.tiers.access},
          {"rows", r.tiers.rows},
          {"lists_before", r.tiers.lists_before},
          {"lists_after", r.tiers.lists_after}}},
        {"applied", r.applied},
        {"estimated_cost_before", r.cost_before},
        {"estimated_cost_after", r.cost_after},
        {"recall_check",
         {{"queries", r.recall_queries},
          {"recall_at_10", r.recall_target},
          {"nprobe_after", r.nprobe_after}}}}},
      {"shard_summary", summary},
      {"lists", {{"size", sizes}, {"access", access}, {"cost", cost}, {"shards", shards}}},
  };
}

PartitionPlan plan_from_json(const nlohmann::json& j) {
  try {
    const int version = j.at("format_version").get<int>();
    if (version != kPlanFormatVersion)
      throw std::runtime_error("plan format_version " + std::to_string(version) +
                               ", this shardforge reads " + std::to_string(kPlanFormatVersion));
    PartitionPlan plan;
    plan.nlist = j.at("nlist").get<int>();
    plan.shards = j.at("shards").get<int>();
    plan.nprobe = j.at("nprobe").get<int>();
    plan.balance = j.at("balance").get<std::string>();
    plan.workload = j.at("workload").at("source").get<std::string>();
    plan.workload_queries = j.at("workload").at("queries").get<int64_t>();
    const auto& sc = j.at("scan_cost");
    plan.scan_cost.a = sc.at("a_seconds").get<double>();
    plan.scan_cost.b = sc.at("b_seconds_per_code").get<double>();
    plan.scan_cost.source = sc.at("source").get<std::string>();
    plan.scan_cost.sizes = sc.at("sizes").get<std::vector<int64_t>>();
    plan.scan_cost.seconds = sc.at("seconds_per_query").get<std::vector<double>>();
    plan.max_over_mean_cost = j.at("max_over_mean_cost").get<double>();
    plan.count_balanced_max_over_mean_cost =
        j.at("count_balanced_max_over_mean_cost").get<double>();
    plan.expected_cost_per_query = j.at("expected_cost_per_query").get<double>();
    if (j.contains("colocation")) {  // absent in plans written before co-location
      const auto& c = j.at("colocation");
      plan.colocated = c.at("applied").get<bool>();
      plan.colocate_slack = c.at("slack").get<double>();
      plan.shards_per_query = c.at("shards_per_query").get<double>();
      plan.lpt_shards_per_query = c.at("lpt_shards_per_query").get<double>();
    }
    const auto& r = j.at("repartition");
    plan.repartition.nlist_before = r.at("nlist_before").get<int>();
    plan.repartition.nlist_after = r.at("nlist_after").get<int>();
    plan.repartition.splits = r.at("splits").get<int>();
    plan.repartition.merges = r.at("merges").get<int>();
    plan.repartition.applied = r.at("applied").get<bool>();
    plan.repartition.cost_before = r.at("estimated_cost_before").get<double>();
    plan.repartition.cost_after = r.at("estimated_cost_after").get<double>();
    if (r.contains("recall_check")) {  // absent in plans written before the check
      const auto& rc = r.at("recall_check");
      plan.repartition.recall_queries = rc.at("queries").get<int>();
      plan.repartition.recall_target = rc.at("recall_at_10").get<double>();
      plan.repartition.nprobe_after = rc.at("nprobe_after").get<double>();
    }
    const auto& t = r.at("tiers");
    plan.repartition.tiers.access = t.at("access").get<std::vector<double>>();
    plan.repartition.tiers.rows = t.at("rows").get<std::vector<int64_t>>();
    plan.repartition.tiers.lists_before = t.at("lists_before").get<std::vector<int>>();
    plan.repartition.tiers.lists_after = t.at("lists_after").get<std::vector<int>>();
    plan.repartition.scan_cost = plan.scan_cost;
    const auto& l = j.at("lists");
    const auto sizes = l.at("size").get<std::vector<int64_t>>();
    const auto access = l.at("access").get<std::vector<double>>();
    const auto cost = l.at("cost").get<std::vector<double>>();
    const auto shards = l.at("shards").get<std::vector<std::vector<int>>>();
    if (sizes.size() != static_cast<size_t>(plan.nlist) || access.size() != sizes.size() ||
        cost.size() != sizes.size() || shards.size() != sizes.size())
      throw std::runtime_error("lists: expected " + std::to_string(plan.nlist) + " entries");
    plan.lists.resize(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int s : shards[i])
        if (s < 0 || s >= plan.shards)
          throw std::runtime_error("list " + std::to_string(i) + " on shard " + std::to_string(s) +
                                   " of " + std::to_string(plan.shards));
      if (shards[i].empty())
        throw std::runtime_error("list " + std::to_string(i) + " has no shard");
      plan.lists[i] = {sizes[i], access[i], cost[i], shards[i]};
    }
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("bad plan: ") + e.what());
  }
}

void write_plan(const PartitionPlan& plan, const std::string& path) {
  io::publish_text(path, plan_to_json(plan).dump(1) + "\n");
}

PartitionPlan read_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error(
        path +
        ": cannot open the partition plan (run `shardforge build` with partition.shards > 0)");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  try {
    return plan_from_json(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::unique_ptr<faiss::Index> make_shard_index(const faiss::Index& merged,
                                               const std::vector<char>& empty,
                                               const PartitionPlan& plan, int shard) {
  std::unique_ptr<faiss::Index> out = io::deserialize_index(empty);
  faiss::IndexIVF& dst = ivf_of(*out, "partition");
  const faiss::IndexIVF* src = find_ivf(&merged);
  if (src == nullptr || src->nlist != dst.nlist || static_cast<int>(dst.nlist) != plan.nlist ||
      src->code_size != dst.code_size)
    throw std::invalid_argument("make_shard_index: the index does not match the plan");
  if (dst.ntotal != 0) throw std::invalid_argument("make_shard_index: the template is not empty");
  int64_t total = 0;
  for (int j : plan.lists_of_shard(shard)) {
    const size_t n = src->invlists->list_size(j);
    if (n == 0) continue;
    faiss::InvertedLists::ScopedIds ids(src->invlists, j);
    faiss::InvertedLists::ScopedCodes codes(src->invlists, j);
    dst.invlists->add_entries(j, n, ids.get(), codes.get());
    total += static_cast<int64_t>(n);
  }
  set_ntotal(*out, total);
  return out;
}

std::string shard_file_name(int shard) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "shards/shard-%04d.faiss", shard);
  return buf;
}

}  // namespace sf::stages
