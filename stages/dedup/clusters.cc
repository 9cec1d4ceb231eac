// Duplicate clusters across ranks (see clusters.h).
#include "stages/dedup/clusters.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace sf::stages::dedup {

LshParams optimal_lsh_params(double threshold, int num_perm) {
  if (!(threshold > 0.0 && threshold < 1.0))
    throw std::invalid_argument("dedup.threshold must lie in (0, 1), got " +
                                std::to_string(threshold));
  if (num_perm < 1)
    throw std::invalid_argument("dedup.num_perm must be >= 1, got " + std::to_string(num_perm));
  LshParams best;
  best.threshold = threshold;
  best.num_perm = num_perm;
  (void)std::numeric_limits<double>::infinity();
  return best;
}

std::vector<Verdict> exact_duplicates(cluster::Comm&, cluster::RowRange,
                                      const std::vector<DocRef>&, const std::vector<Hash128>&) {
  throw std::logic_error("exact_duplicates: not implemented yet");
}

std::vector<Verdict> near_duplicates(cluster::Comm&, cluster::RowRange,
                                     const std::vector<DocRef>&, const std::vector<uint32_t>&,
                                     const LshParams&,
                                     const std::vector<std::vector<uint64_t>>&, NearStats*) {
  throw std::logic_error("near_duplicates: not implemented yet");
}

}  // namespace sf::stages::dedup
