// The options of `partition` and its query workload.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sf::stages {

struct PartitionOptions {
  int nprobe = 8;
  int shards = 1;
  int replicate_hot = 0;
  int tiers = 4;      // access-density tiers (1: lists are not re-sized)
  int max_nlist = 0;  // nlist after re-sizing; 0 = the factory's nlist
  int64_t min_list_size = 16;
  double colocate_slack = 0.05;   // co-location's load bound over the mean; < 0: LPT only
  std::vector<double> scan_cost;  // [a, b]: fixed lambda; empty: calibrate
  int kmeans_iterations = 10;
  uint64_t seed = 1234;
  int64_t batch_rows = 16384;
};

// The workload: queries in the corpus's space and their weights (empty: all 1).
struct Workload {
  std::string source;
  int64_t nq = 0;
  std::vector<float> queries;  // nq x d
  std::vector<float> weights;
};

}  // namespace sf::stages
