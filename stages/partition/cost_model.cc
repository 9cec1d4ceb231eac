#include "stages/partition/cost_model.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>

#include "io/index_file.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "stages/list_scan.h"

namespace sf::stages {
namespace {

constexpr int kCalibrationRounds = 7;              // timings per list size (median)

}  // namespace

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

std::vector<double> expected_costs(const std::vector<double>& access,
                                   const std::vector<int64_t>& sizes, const ScanCost& lambda) {
  std::vector<double> cost(access.size());
  for (size_t j = 0; j < access.size(); ++j)
    cost[j] = sizes[j] > 0 ? access[j] * lambda(static_cast<double>(sizes[j])) : 0.0;
  return cost;
}

}  // namespace sf::stages
