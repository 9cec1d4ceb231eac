// optimal_lsh_params (stages/dedup/clusters.h): bands x rows for a threshold.
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

#include "stages/dedup/clusters.h"

namespace sf::stages::dedup {
namespace {

// Integral of f over [a, b]: composite 8-point Gauss-Legendre on 64 panels (far below the
// differences between candidate (b, r) pairs; scipy's quad agrees to ~1e-12).
double integrate(const std::function<double(double)>& f, double a, double b) {
  static const double x[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                              0.9602898564975363};
  static const double w[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                              0.1012285362903763};
  const int panels = 64;
  const double h = (b - a) / panels;
  double sum = 0.0;
  for (int p = 0; p < panels; ++p) {
    const double mid = a + (p + 0.5) * h, half = 0.5 * h;
    for (int k = 0; k < 4; ++k)
      sum += w[k] * half * (f(mid - half * x[k]) + f(mid + half * x[k]));
  }
  return sum;
}

}  // namespace

LshParams optimal_lsh_params(double threshold, int num_perm) {
  if (!(threshold > 0.0 && threshold < 1.0))
    throw std::invalid_argument("dedup.threshold must lie in (0, 1), got " +
                                std::to_string(threshold));
  if (num_perm < 1)
    throw std::invalid_argument("dedup.num_perm must be >= 1, got " + std::to_string(num_perm));
  LshParams best;
  best.threshold = threshold;
  best.num_perm = num_perm;
  double min_error = std::numeric_limits<double>::infinity();
  for (int b = 1; b <= num_perm; ++b) {
    for (int r = 1; r <= num_perm / b; ++r) {
      const double fb = b, fr = r;
      const double fp = integrate(
          [&](double s) { return 1.0 - std::pow(1.0 - std::pow(s, fr), fb); }, 0.0, threshold);
      const double fn = integrate(
          [&](double s) { return std::pow(1.0 - std::pow(s, fr), fb); }, threshold, 1.0);
      const double error = 0.5 * fp + 0.5 * fn;
      if (error < min_error) {
        min_error = error;
        best.bands = b;
        best.rows = r;
      }
    }
  }
  return best;
}

}  // namespace sf::stages::dedup
