// MPI tests of cluster/comm.h (run with 1, 2 and 4 ranks): agree() and run_local_phase()
// stopping every rank with the failing rank's message, and the byte and numeric collectives
// round-tripping, with empty buffers and sizes that differ per rank.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cluster/comm.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::cluster {
namespace {

using sf::testing::problems_on_any_rank;
using sf::testing::world;

// Deterministic bytes that say who made them for whom: n bytes from (a, b).
Bytes pattern(int a, int b, size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((a * 31 + b * 7 + i * 13) & 0xff);
  return out;
}

// What agree() did on this rank: "" when it did not throw, else "rank|phase|detail|what".
std::string outcome_of_agree(Comm& comm, const std::string& phase, std::exception_ptr error) {
  try {
    agree(comm, phase, error);
    return "";
  } catch (const PhaseError& e) {
    return std::to_string(e.failed_rank()) + "|" + e.phase() + "|" + e.detail() + "|" + e.what();
  } catch (const std::exception& e) {
    return std::string("not a PhaseError: ") + e.what();
  }
}

TEST(MpiComm, RanksAreDistinctAndLocalSizeIsPlausible) {
  Comm& comm = world();
  EXPECT_GE(comm.size(), 1);
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.size());
  EXPECT_GE(comm.local_size(), 1);
  EXPECT_LE(comm.local_size(), comm.size());
  const std::string r = std::to_string(comm.rank());
  const std::vector<Bytes> all = comm.allgather(Bytes(r.begin(), r.end()));
  ASSERT_EQ(static_cast<int>(all.size()), comm.size());
  for (int i = 0; i < comm.size(); ++i)
    EXPECT_EQ(std::string(all[i].begin(), all[i].end()), std::to_string(i));
}

// ---- agree / run_local_phase --------------------------------------------------------------

TEST(MpiAgree, WhenOnlyRankOneFailsEveryRankThrowsItsMessage) {
  Comm& comm = world();
  const int failing = comm.size() > 1 ? 1 : 0;
  const std::string message = "disk full on rank " + std::to_string(failing);
  std::exception_ptr error;
  if (comm.rank() == failing) error = std::make_exception_ptr(std::runtime_error(message));
  try {
    agree(comm, "write shards", error);
    ADD_FAILURE() << "rank " << comm.rank() << ": agree did not throw";
  } catch (const PhaseError& e) {
    EXPECT_EQ(e.failed_rank(), failing);
    EXPECT_EQ(e.phase(), "write shards");
    EXPECT_EQ(e.detail(), message);
    const std::string what = e.what();
    EXPECT_NE(what.find(message), std::string::npos) << what;
    EXPECT_NE(what.find("write shards"), std::string::npos) << what;
  }
  // Every rank saw exactly the same error.
  std::string outcome;
  try {
    agree(comm, "again", error);
  } catch (const PhaseError& e) {
    outcome = e.what();
  }
  const std::vector<std::string> all = sf::testing::gather_strings(comm, outcome);
  if (comm.rank() == 0) {
    for (size_t r = 0; r < all.size(); ++r) {
      EXPECT_EQ(all[r], all[0]) << "rank " << r;
      EXPECT_FALSE(all[r].empty()) << "rank " << r << " did not throw";
    }
  }
}

TEST(MpiAgree, WhenAllSucceedNothingThrowsAndRanksStayInStep) {
  Comm& comm = world();
  for (int i = 0; i < 5; ++i) EXPECT_NO_THROW(agree(comm, "ok", nullptr));
  // A collective right after still lines up on every rank.
  EXPECT_EQ(comm.sum(int64_t{1}), comm.size());
}

TEST(MpiAgree, TheLowestFailingRankIsReported) {
  Comm& comm = world();
  // Every rank from the middle up fails, each with its own message.
  const int first = comm.size() / 2;
  std::exception_ptr error;
  if (comm.rank() >= first)
    error = std::make_exception_ptr(
        std::runtime_error("failure of rank " + std::to_string(comm.rank())));
  const std::string outcome = outcome_of_agree(comm, "phase", error);
  const std::string expected_prefix =
      std::to_string(first) + "|phase|failure of rank " + std::to_string(first) + "|";
  std::string problem;
  if (outcome.rfind(expected_prefix, 0) != 0) problem = "got '" + outcome + "'";
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "") << "expected prefix " << expected_prefix;
  }
}

TEST(MpiAgree, RepeatedFailuresOnChangingRanksKeepRanksInStep) {
  Comm& comm = world();
  std::string problem;
  for (int round = 0; round < 3 * comm.size(); ++round) {
    const int failing = round % comm.size();
    std::exception_ptr error;
    if (comm.rank() == failing)
      error = std::make_exception_ptr(std::invalid_argument("round " + std::to_string(round)));
    const std::string outcome = outcome_of_agree(comm, "round", error);
    const std::string expected =
        std::to_string(failing) + "|round|round " + std::to_string(round) + "|";
    if (outcome.rfind(expected, 0) != 0)
      problem += "round " + std::to_string(round) + ": '" + outcome + "' ";
    // A successful round in between.
    if (!outcome_of_agree(comm, "ok", nullptr).empty()) problem += "ok round threw ";
  }
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

TEST(MpiRunLocalPhase, ExceptionOnTheLastRankStopsEveryRank) {
  Comm& comm = world();
  const int failing = comm.size() - 1;
  int calls = 0;
  std::string problem;
  try {
    run_local_phase(comm, "read rows", [&] {
      ++calls;
      if (comm.rank() == failing) throw std::runtime_error("bad row on the last rank");
    });
    problem = "no throw";
  } catch (const PhaseError& e) {
    if (e.failed_rank() != failing) problem += "failed_rank " + std::to_string(e.failed_rank());
    if (e.detail() != "bad row on the last rank") problem += " detail '" + e.detail() + "'";
    if (e.phase() != "read rows") problem += " phase '" + e.phase() + "'";
  }
  if (calls != 1) problem += " work ran " + std::to_string(calls) + " times";
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

TEST(MpiRunLocalPhase, SuccessOnEveryRankReturnsNormally) {
  Comm& comm = world();
  int calls = 0;
  EXPECT_NO_THROW(run_local_phase(comm, "noop", [&] { ++calls; }));
  EXPECT_EQ(calls, 1);
}

// ---- byte collectives ---------------------------------------------------------------------

TEST(MpiComm, BroadcastFromEveryRootResizesEveryRank) {
  Comm& comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{3} << 20}) {
      // Non-roots start with junk of another size, which must be replaced.
      Bytes b = comm.rank() == root ? pattern(root, 0, n) : pattern(comm.rank(), 99, 17);
      comm.broadcast(b, root);
      EXPECT_EQ(b.size(), n) << "root " << root;
      EXPECT_TRUE(b == pattern(root, 0, n)) << "root " << root << " n " << n;
    }
  }
}

TEST(MpiComm, AllgatherWithSizesDifferingPerRank) {
  Comm& comm = world();
  for (int variant = 0; variant < 3; ++variant) {
    // Rank r sends (r * 5 + variant) % 4 * 100 bytes: some ranks send nothing.
    auto size_of = [&](int r) { return static_cast<size_t>((r * 5 + variant) % 4 * 100); };
    const std::vector<Bytes> all =
        comm.allgather(pattern(comm.rank(), variant, size_of(comm.rank())));
    ASSERT_EQ(static_cast<int>(all.size()), comm.size());
    for (int r = 0; r < comm.size(); ++r)
      EXPECT_TRUE(all[r] == pattern(r, variant, size_of(r))) << "from rank " << r;
  }
  const std::vector<Bytes> empty = comm.allgather(Bytes{});
  ASSERT_EQ(static_cast<int>(empty.size()), comm.size());
  for (const Bytes& b : empty) EXPECT_TRUE(b.empty());
}

TEST(MpiComm, GatherReachesOnlyTheRoot) {
  Comm& comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    const size_t mine = static_cast<size_t>(comm.rank()) * 37;  // rank 0 sends nothing
    const std::vector<Bytes> got = comm.gather(pattern(comm.rank(), root, mine), root);
    if (comm.rank() == root) {
      ASSERT_EQ(static_cast<int>(got.size()), comm.size());
      for (int r = 0; r < comm.size(); ++r)
        EXPECT_TRUE(got[r] == pattern(r, root, static_cast<size_t>(r) * 37)) << "from rank " << r;
    } else {
      EXPECT_TRUE(got.empty()) << "non-root rank " << comm.rank() << " received something";
    }
  }
}

TEST(MpiComm, AlltoallvDeliversEachBufferToItsRank) {
  Comm& comm = world();
  // send[d] from rank s has (s * 3 + d * 5) % 7 * 50 bytes: sizes differ, some are empty.
  auto size_of = [](int s, int d) { return static_cast<size_t>((s * 3 + d * 5) % 7 * 50); };
  std::vector<Bytes> send(comm.size());
  for (int d = 0; d < comm.size(); ++d) send[d] = pattern(comm.rank(), d, size_of(comm.rank(), d));
  const std::vector<Bytes> got = comm.alltoallv(send);
  ASSERT_EQ(static_cast<int>(got.size()), comm.size());
  for (int s = 0; s < comm.size(); ++s)
    EXPECT_TRUE(got[s] == pattern(s, comm.rank(), size_of(s, comm.rank()))) << "from rank " << s;
}

TEST(MpiComm, BackToBackAlltoallvsKeepTheirMessagesApart) {
  // Point-to-point underneath: a rank may start the next exchange while another is still in
  // this one; each call must still get exactly its own buffers (sizes change every round).
  Comm& comm = world();
  auto size_of = [](int round, int s, int d) {
    return static_cast<size_t>((round * 7 + s * 3 + d) % 5 * 40);
  };
  for (int round = 0; round < 6; ++round) {
    std::vector<Bytes> send(comm.size());
    for (int d = 0; d < comm.size(); ++d)
      send[d] = pattern(comm.rank() + 100 * round, d, size_of(round, comm.rank(), d));
    const std::vector<Bytes> got = comm.alltoallv(send);
    for (int s = 0; s < comm.size(); ++s)
      EXPECT_TRUE(got[s] == pattern(s + 100 * round, comm.rank(), size_of(round, s, comm.rank())))
          << "round " << round << " from rank " << s;
  }
}

TEST(MpiComm, AlltoallvOfEmptyBuffers) {
  Comm& comm = world();
  const std::vector<Bytes> got = comm.alltoallv(std::vector<Bytes>(comm.size()));
  ASSERT_EQ(static_cast<int>(got.size()), comm.size());
  for (const Bytes& b : got) EXPECT_TRUE(b.empty());
}

TEST(MpiComm, SendRecvBetweenPairsOfRanks) {
  Comm& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  // Pairs (0, 1), (2, 3), ...; the lower rank sends first, then they swap roles.
  const int partner = comm.rank() ^ 1;
  if (partner >= comm.size()) return;  // odd rank count: the last rank has no partner
  const bool lower = comm.rank() < partner;
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{5} << 20}) {
    const int tag = 100 + static_cast<int>(n % 1000);
    if (lower) {
      comm.send(pattern(comm.rank(), partner, n), partner, tag);
      const Bytes back = comm.recv(partner, tag);
      EXPECT_TRUE(back == pattern(partner, comm.rank(), n)) << "n " << n;
    } else {
      const Bytes got = comm.recv(partner, tag);
      EXPECT_TRUE(got == pattern(partner, comm.rank(), n)) << "n " << n;
      comm.send(pattern(comm.rank(), partner, n), partner, tag);
    }
  }
}

// ---- numeric collectives ------------------------------------------------------------------

TEST(MpiComm, AllreduceSumMinMax) {
  Comm& comm = world();
  const int size = comm.size(), rank = comm.rank();
  constexpr size_t kN = 5;
  // Each value depends on rank and position; the expected results are computed from the
  // same formulas over all ranks.
  auto int_value = [](int r, size_t i) {
    return static_cast<int64_t>((r * 7 + i * 3) % 5) - int64_t(i) * 1000000007;
  };
  auto dbl_value = [](int r, size_t i) {
    return 0.5 * r - 0.25 * static_cast<double>(i) + (r % 2 ? 8.0 : -8.0);
  };
  std::vector<int64_t> isum(kN), imin(kN);
  std::vector<double> dsum(kN), dmax(kN);
  for (size_t i = 0; i < kN; ++i) {
    isum[i] = imin[i] = int_value(rank, i);
    dsum[i] = dmax[i] = dbl_value(rank, i);
  }
  comm.allreduce_sum(isum.data(), kN);
  comm.allreduce_min(imin.data(), kN);
  comm.allreduce_sum(dsum.data(), kN);
  comm.allreduce_max(dmax.data(), kN);
  for (size_t i = 0; i < kN; ++i) {
    int64_t want_sum = 0, want_min = int_value(0, i);
    double want_dsum = 0, want_dmax = dbl_value(0, i);
    for (int r = 0; r < size; ++r) {
      want_sum += int_value(r, i);
      want_min = std::min(want_min, int_value(r, i));
      want_dsum += dbl_value(r, i);  // multiples of 1/4: exact in any order
      want_dmax = std::max(want_dmax, dbl_value(r, i));
    }
    EXPECT_EQ(isum[i], want_sum) << i;
    EXPECT_EQ(imin[i], want_min) << i;
    EXPECT_EQ(dsum[i], want_dsum) << i;
    EXPECT_EQ(dmax[i], want_dmax) << i;
  }
  // The typed conveniences.
  EXPECT_EQ(comm.sum(int64_t{rank + 1}), int64_t{size} * (size + 1) / 2);
  EXPECT_EQ(comm.sum(0.5 * rank), 0.25 * size * (size - 1));
  EXPECT_EQ(comm.max(static_cast<double>(-rank)), 0.0);
  EXPECT_EQ(comm.min(int64_t{10 - rank}), int64_t{10 - (size - 1)});
  // Zero elements: a no-op that still lines up.
  comm.allreduce_sum(static_cast<int64_t*>(nullptr), 0);
  EXPECT_EQ(comm.sum(int64_t{1}), size);
}

}  // namespace
}  // namespace sf::cluster

namespace sf::cluster {
namespace {

// Uneven pieces (rank r holds 3r + 1 rows; rank 1 of 4 none when r == 1 is skipped) to
// block-aligned targets: every rank ends with exactly the rows of its target, in order.
TEST(MpiRedistributeRows, UnevenPiecesToBlockAlignedRanges) {
  Comm& comm = sf::testing::world();
  const int r = comm.rank(), n = comm.size();
  auto held = [](int rank) { return rank == 1 ? 0 : 3 * rank + 1; };
  int64_t start = 0, total = 0;
  for (int q = 0; q < n; ++q) {
    if (q < r) start += held(q);
    total += held(q);
  }
  std::vector<int32_t> mine;  // two values per row: (row, -row)
  for (int64_t i = start; i < start + held(r); ++i) {
    mine.push_back(static_cast<int32_t>(i));
    mine.push_back(static_cast<int32_t>(-i));
  }
  const RowRange target = block_row_range(total, 2, r, n);
  const std::vector<int32_t> got = redistribute_rows(comm, mine, 2, target);
  std::string problem;
  if (static_cast<int64_t>(got.size()) != 2 * target.size()) problem = "wrong row count";
  for (int64_t i = 0; problem.empty() && i < target.size(); ++i)
    if (got[2 * i] != target.begin + i || got[2 * i + 1] != -(target.begin + i))
      problem = "row " + std::to_string(target.begin + i) + " wrong";
  const std::string problems = sf::testing::problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(problems, "");
  }
  EXPECT_EQ(problem, "");
}

// exscan (MPI_Exscan) and offsets: rank r holds r + 1 items (rank 2 none), so the ranks
// before r hold the sum of theirs.
TEST(MpiComm, ExscanAndOffsetsArePrefixSums) {
  Comm& comm = world();
  auto count = [](int r) { return r == 2 ? int64_t{0} : int64_t{r} + 1; };
  int64_t before = 0, total = 0;
  for (int r = 0; r < comm.size(); ++r) {
    if (r < comm.rank()) before += count(r);
    total += count(r);
  }
  std::string problem;
  const int64_t got = comm.exscan(count(comm.rank()));
  if (got != before) problem += "exscan " + std::to_string(got) + ", expected " + std::to_string(before) + "; ";
  const std::vector<int64_t> offsets = comm.offsets(count(comm.rank()));
  if (offsets.size() != static_cast<size_t>(comm.size()) + 1 || offsets[comm.rank()] != before ||
      offsets.back() != total)
    problem += "offsets wrong; ";
  // The default (gathering) implementation agrees with MPI_Exscan.
  if (comm.Comm::exscan(count(comm.rank())) != before) problem += "default exscan differs; ";
  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

}  // namespace
}  // namespace sf::cluster
