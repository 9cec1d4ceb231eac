// The scan cost model of `partition`: lambda(s) = a + b s seconds to scan a list of s codes for
// one query, calibrated on this machine with the index's own code type and the search kernel
// (stages/list_scan.h); a list's expected cost per query is its access frequency times lambda.
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sf::stages {

// lambda(s) = a + b s seconds to scan s codes for one query.
struct ScanCost {
  double a = 0;
  double b = 1e-9;
  std::string source = "calibrated";  // "calibrated" (timed here) or "config"
  std::vector<int64_t> sizes;         // calibration points
  std::vector<double> seconds;        // measured seconds per query at each size
  double operator()(double codes) const { return a + b * codes; }
  static ScanCost linear(double a, double b) {  // a fixed lambda (source "config")
    ScanCost c;
    c.a = a;
    c.b = b;
    c.source = "config";
    return c;
  }
};

// Local. Times BatchScanner on lists of 16 .. 4096 codes (random codes of `index`'s own code
// type, batches of 32 queries; 7 rounds over all sizes, each timing >= 1 ms; the median per
// size: fit_scan_cost_rounds). `index` is trained; it is not modified (a copy is used).
ScanCost calibrate_scan_cost(const faiss::Index& index, uint64_t seed);

// Pure. The median of each size's timings (timings[i]: one per round for sizes[i]; a burst of
// load slowing fewer than half the rounds leaves it unchanged), fitted by fit_scan_cost. Throws
// std::invalid_argument on a size without timings and as fit_scan_cost.
ScanCost fit_scan_cost_rounds(const std::vector<int64_t>& sizes,
                              std::vector<std::vector<double>> timings);

// Pure. a + b s fitted to (sizes, seconds) by least squares on relative error (a >= 0, b > 0),
// then a snapped to b * snap_overhead_codes(a / b). Every decision of the plan (re-sizing,
// placement) depends on lambda only through a / b (scaling lambda scales every cost alike), so
// the snap makes timing noise that keeps a / b within the same power of two leave the plan
// unchanged. Throws std::invalid_argument on < 2 points or a time <= 0.
ScanCost fit_scan_cost(const std::vector<int64_t>& sizes, const std::vector<double>& seconds);

// The per-list overhead a / b in codes, snapped to the nearest power of two (log scale);
// below 8 codes (not resolved by timings of lists of >= 16 codes): 0.
double snap_overhead_codes(double codes);

// Local. Rows in the space of the IVF inside `index` (its vector transforms applied, one
// kBlockRows block at a time, BLAS single-threaded: the bits of a block do not depend on the
// thread count).
std::vector<float> to_ivf_space(const faiss::Index& index, int64_t n, const float* x);

// cost_j = access[j] * lambda(sizes[j]).
std::vector<double> expected_costs(const std::vector<double>& access,
                                   const std::vector<int64_t>& sizes, const ScanCost& lambda);

}  // namespace sf::stages
