// Semantic dedup spreads lists over ranks: every rank count gives the single-process verdicts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "stages/dedup/semantic.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages::dedup {
namespace {

TEST(SemanticDedupMpi, SameVerdictsForAnyRankCount) {
  cluster::Comm& comm = sf::testing::world();
  const int d = 16, n = 600;
  // Every rank builds the same corpus: 60 groups of 10 near-copies, in 7 lists, shuffled rows.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> all(static_cast<size_t>(n) * d);
  std::vector<SemanticDoc> docs(n);
  std::vector<float> base(d);
  for (int i = 0; i < n; ++i) {
    if (i % 10 == 0)
      for (float& x : base) x = normal(rng);
    double norm = 0;
    for (int j = 0; j < d; ++j) {
      all[i * d + j] = base[j] + 0.02f * normal(rng);
      norm += double(all[i * d + j]) * all[i * d + j];
    }
    for (int j = 0; j < d; ++j) all[i * d + j] = float(all[i * d + j] / std::sqrt(norm));
    docs[i] = {static_cast<uint64_t>(i), (i / 10) % 7, double((i * 7919) % 13)};
  }
  auto serial_comm = cluster::make_serial_comm();
  SemanticStats serial_stats;
  const auto expected = semantic_duplicates(*serial_comm, docs, all.data(), d, {}, &serial_stats);

  const cluster::RowRange range = cluster::row_range(n, comm.rank(), comm.size());
  const std::vector<SemanticDoc> mine(docs.begin() + range.begin, docs.begin() + range.end);
  std::string problem;
  // Default rounds (one here), then rounds of ~5 records per rank and direction (many rounds,
  // lists larger than a round): the same verdicts.
  for (size_t round_bytes : {SemanticOptions{}.round_bytes, size_t{5 * (32 + d * 4)}}) {
    SemanticOptions options;
    options.round_bytes = round_bytes;
    SemanticStats stats;
    const auto got = semantic_duplicates(comm, mine, all.data() + range.begin * d, d, options, &stats);

    std::vector<SemanticVerdict> want;
    for (const SemanticVerdict& v : expected)
      if (static_cast<int64_t>(v.row) >= range.begin && static_cast<int64_t>(v.row) < range.end)
        want.push_back(v);
    if (got.size() != want.size()) {
      problem += std::to_string(got.size()) + " verdicts, expected " + std::to_string(want.size());
    } else {
      for (size_t i = 0; i < got.size(); ++i)
        if (got[i].row != want[i].row || got[i].representative != want[i].representative ||
            got[i].similarity != want[i].similarity)
          problem += " row " + std::to_string(got[i].row) + " differs";
    }
    if (stats.removed != serial_stats.removed) problem += " removed counts differ";
    if (stats.pairs != serial_stats.pairs) problem += " pair counts differ";
  }
  if (expected.empty()) problem += " the corpus should have duplicates";
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

}  // namespace
}  // namespace sf::stages::dedup
