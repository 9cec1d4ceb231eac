// The final duplicate clusters of exact + near dedup across ranks, and the rule that joins
// them: an exact duplicate whose representative is itself in a near cluster joins that cluster
// (its representative and reason become the near ones; a near cluster's representative keeps
// its exact duplicates in its own cluster).
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cluster/archive.h"
#include "cluster/comm.h"
#include "stages/dedup/clusters.h"

namespace sf::stages::dedup {

struct FinalVerdict {  // one removed document
  uint64_t row, cluster, representative;
  bool near;
  double similarity;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & row & cluster & representative & near & similarity;
  }
};

struct FinalClusters {
  std::vector<FinalVerdict> verdicts;  // this rank's removed documents, sorted by row
  int64_t clusters = 0;                // global: clusters with >= 2 members
  int64_t largest_cluster = 0;         // global: members of the largest
};

// Collective. `exact` and `near`: this rank's verdicts of exact_duplicates and (among the
// exact survivors) near_duplicates; rank r holds rows [begins[r], begins[r+1]).
FinalClusters final_clusters(cluster::Comm& comm, const std::vector<int64_t>& begins,
                             const std::vector<Verdict>& exact, const std::vector<Verdict>& near);

// The rank holding global `row`.
int owner_of(const std::vector<int64_t>& begins, uint64_t row);

// Collective: for every row in `wanted`, answer(row) computed by the rank that holds it. The
// answer is any type cluster/archive.h serialises (a std::string, a struct with serialize()).
template <class Answer>
auto fetch_by_row(cluster::Comm& comm, const std::vector<int64_t>& begins,
                  const std::vector<uint64_t>& wanted, const Answer& answer)
    -> std::unordered_map<uint64_t, std::decay_t<decltype(answer(uint64_t{}))>> {
  using T = std::decay_t<decltype(answer(uint64_t{}))>;
  std::vector<std::vector<uint64_t>> asks(static_cast<size_t>(comm.size()));
  for (uint64_t row : wanted) asks[static_cast<size_t>(owner_of(begins, row))].push_back(row);
  for (auto& rows : asks) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
  std::vector<std::vector<uint64_t>> requests = asks;
  requests = cluster::exchange(comm, requests);  // the rows each rank asks of this one
  std::vector<std::vector<T>> replies(requests.size());  // in the order asked
  for (size_t r = 0; r < requests.size(); ++r)
    for (uint64_t row : requests[r]) replies[r].push_back(answer(row));
  const std::vector<std::vector<T>> answers = cluster::alltoallv_as(comm, replies, "fetch_by_row");
  std::unordered_map<uint64_t, T> out;
  for (size_t r = 0; r < answers.size(); ++r) {
    if (answers[r].size() != asks[r].size())
      throw std::logic_error("fetch_by_row: rank " + std::to_string(r) + " answered " +
                             std::to_string(answers[r].size()) + " of " +
                             std::to_string(asks[r].size()) + " rows");
    for (size_t k = 0; k < asks[r].size(); ++k) out.emplace(asks[r][k], answers[r][k]);
  }
  return out;
}

}  // namespace sf::stages::dedup
