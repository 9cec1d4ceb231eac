// Unit tests for cluster/comm.h without MPI: row_range over many (rows, size) combinations,
// SerialComm's collectives (identities), agree() and run_local_phase() on one rank.
#include "cluster/comm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sf::cluster {
namespace {

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

// ---- row_range --------------------------------------------------------------------------

// Checks every property row_range promises for one (rows, size).
void expect_valid_partition(int64_t rows, int size) {
  SCOPED_TRACE("rows=" + std::to_string(rows) + " size=" + std::to_string(size));
  int64_t expected_begin = 0;
  int64_t previous_size = -1;
  const int64_t floor_share = rows / size;
  for (int rank = 0; rank < size; ++rank) {
    const RowRange r = row_range(rows, rank, size);
    EXPECT_EQ(r.begin, expected_begin) << "rank " << rank << " not contiguous with rank - 1";
    EXPECT_LE(r.begin, r.end) << "rank " << rank;
    EXPECT_EQ(r.size(), r.end - r.begin);
    // Balanced: every share is floor(rows / size) or one more.
    EXPECT_GE(r.size(), floor_share) << "rank " << rank;
    EXPECT_LE(r.size(), floor_share + 1) << "rank " << rank;
    // Earlier ranks get the extra row: shares never grow with the rank.
    if (previous_size >= 0) {
      EXPECT_LE(r.size(), previous_size) << "rank " << rank;
    }
    previous_size = r.size();
    expected_begin = r.end;
  }
  EXPECT_EQ(expected_begin, rows) << "the ranges do not cover all rows";
}

TEST(RowRange, PartitionsAreBalancedContiguousAndCoverAllRows) {
  const std::vector<int64_t> row_counts = {0,  1,  2,   3,   4,    5,    7,    8,     15,
                                           16, 17, 100, 999, 1000, 1001, 4097, 65537, 1000003};
  const std::vector<int> sizes = {1, 2, 3, 4, 5, 7, 8, 16, 31, 64, 128, 1000};
  for (int64_t rows : row_counts)
    for (int size : sizes) expect_valid_partition(rows, size);
}

TEST(RowRange, HugeRowCountsDoNotOverflow) {
  // 5e12 rows: rank * (rows / size) exceeds 32 bits.
  const int64_t rows = int64_t{5'000'000'000'003};
  for (int size : {3, 7, 1024, 65536}) expect_valid_partition(rows, size);
  const RowRange last = row_range(rows, 1023, 1024);
  EXPECT_EQ(last.end, rows);
}

TEST(RowRange, ExtraRowsGoToTheFirstRanks) {
  // 10 rows over 4 ranks: 3, 3, 2, 2.
  const std::vector<int64_t> expected_sizes = {3, 3, 2, 2};
  for (int rank = 0; rank < 4; ++rank)
    EXPECT_EQ(row_range(10, rank, 4).size(), expected_sizes[rank]) << "rank " << rank;
}

TEST(RowRange, FewerRowsThanRanksLeavesTheLastRanksEmpty) {
  for (int rank = 0; rank < 8; ++rank) {
    const RowRange r = row_range(3, rank, 8);
    EXPECT_EQ(r.size(), rank < 3 ? 1 : 0) << "rank " << rank;
    if (rank < 3) {
      EXPECT_EQ(r.begin, rank);
    }
  }
}

TEST(RowRange, OneRankOwnsEverything) {
  const RowRange r = row_range(12345, 0, 1);
  EXPECT_EQ(r.begin, 0);
  EXPECT_EQ(r.end, 12345);
}

// ---- SerialComm ---------------------------------------------------------------------------

TEST(SerialComm, IsRankZeroOfOne) {
  auto comm = make_serial_comm();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->local_size(), 1);
  comm->barrier();
}

TEST(SerialComm, ReductionsAreIdentities) {
  auto comm = make_serial_comm();
  std::vector<int64_t> ints = {-3, 0, 7};
  comm->allreduce_sum(ints.data(), ints.size());
  EXPECT_EQ(ints, (std::vector<int64_t>{-3, 0, 7}));
  comm->allreduce_min(ints.data(), ints.size());
  EXPECT_EQ(ints, (std::vector<int64_t>{-3, 0, 7}));
  std::vector<double> doubles = {-1.5, 2.25};
  comm->allreduce_sum(doubles.data(), doubles.size());
  EXPECT_EQ(doubles, (std::vector<double>{-1.5, 2.25}));
  comm->allreduce_max(doubles.data(), doubles.size());
  EXPECT_EQ(doubles, (std::vector<double>{-1.5, 2.25}));
  EXPECT_EQ(comm->sum(int64_t{41}), 41);
  EXPECT_EQ(comm->sum(0.5), 0.5);
  EXPECT_EQ(comm->max(-2.0), -2.0);
  EXPECT_EQ(comm->min(int64_t{-9}), -9);
}

TEST(SerialComm, ByteCollectivesReturnOwnBytes) {
  auto comm = make_serial_comm();
  const Bytes mine = bytes_of("shard-0");
  EXPECT_EQ(comm->gather(mine, 0), std::vector<Bytes>{mine});
  EXPECT_EQ(comm->allgather(mine), std::vector<Bytes>{mine});
  EXPECT_EQ(comm->alltoallv({mine}), std::vector<Bytes>{mine});
  EXPECT_EQ(comm->gather(Bytes{}, 0), std::vector<Bytes>{Bytes{}});
  EXPECT_EQ(comm->allgather(Bytes{}), std::vector<Bytes>{Bytes{}});
  EXPECT_EQ(comm->alltoallv({Bytes{}}), std::vector<Bytes>{Bytes{}});
  Bytes b = bytes_of("unchanged");
  comm->broadcast(b, 0);
  EXPECT_EQ(b, bytes_of("unchanged"));
}

TEST(SerialComm, SendToSelfIsReceivedByTag) {
  auto comm = make_serial_comm();
  comm->send(bytes_of("first"), 0, 11);
  comm->send(bytes_of("second"), 0, 12);
  comm->send(Bytes{}, 0, 13);
  EXPECT_EQ(comm->recv(0, 12), bytes_of("second"));
  EXPECT_EQ(comm->recv(0, 11), bytes_of("first"));
  EXPECT_EQ(comm->recv(0, 13), Bytes{});
}

// ---- agree / run_local_phase on one rank ---------------------------------------------------

// Rank 0 of two, where rank 1 is scripted: its value in allreduce_min and its bytes when it is
// the broadcast root. Counts the collectives, so a test sees what agree() asked of the ranks.
class ScriptedPeerComm : public Comm {
 public:
  ScriptedPeerComm(int64_t peer_min, std::string peer_message)
      : peer_min_(peer_min), peer_message_(std::move(peer_message)) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_size() const override { return 2; }
  void barrier() override { ++collectives; }
  void broadcast(Bytes& bytes, int root) override {
    ++collectives;
    ++broadcasts;
    if (root == 1) bytes = bytes_of(peer_message_);
  }
  void allreduce_sum(int64_t*, size_t) override { unexpected(); }
  void allreduce_sum(double*, size_t) override { unexpected(); }
  void allreduce_max(double*, size_t) override { unexpected(); }
  void allreduce_min(int64_t* data, size_t n) override {
    ++collectives;
    for (size_t i = 0; i < n; ++i) data[i] = std::min(data[i], peer_min_);
  }
  std::vector<Bytes> gather(const Bytes&, int) override {
    unexpected();
    return {};
  }
  std::vector<Bytes> allgather(const Bytes&) override {
    unexpected();
    return {};
  }
  std::vector<Bytes> alltoallv(const std::vector<Bytes>&) override {
    unexpected();
    return {};
  }
  void send(const Bytes&, int, int) override { unexpected(); }
  Bytes recv(int, int) override {
    unexpected();
    return {};
  }
  [[noreturn]] void abort(int exit_code) override {
    throw std::logic_error("abort(" + std::to_string(exit_code) + ")");
  }

  int collectives = 0;
  int broadcasts = 0;

 private:
  void unexpected() { ADD_FAILURE() << "agree() used a collective other than min and broadcast"; }
  int64_t peer_min_;
  std::string peer_message_;
};

// What rank 1 puts into agree()'s allreduce_min (comm.cc): its rank when it failed, the size
// (2) when it asks to stop, size + 1 when it is fine.
constexpr int64_t kPeerFailed = 1, kPeerStops = 2, kPeerFine = 3;

TEST(Agree, NoErrorOnAnyRankReturnsAfterOneSmallCollective) {
  ScriptedPeerComm comm(kPeerFine, "");
  EXPECT_NO_THROW(agree(comm, "phase", nullptr));
  EXPECT_EQ(comm.collectives, 1) << "one allreduce, no broadcast, when no rank failed";
  EXPECT_EQ(comm.broadcasts, 0);
  ScriptedPeerComm stopping(kPeerStops, "");
  EXPECT_FALSE(agree_or_stop(comm, "phase", nullptr, false));
  EXPECT_TRUE(agree_or_stop(stopping, "phase", nullptr, false)) << "rank 1's stop reaches rank 0";
}

TEST(Agree, AnotherRanksErrorStopsARankThatHadNone) {
  ScriptedPeerComm comm(kPeerFailed, "disk on fire");
  try {
    agree(comm, "build: add", nullptr);
    ADD_FAILURE() << "rank 0 went on although rank 1 failed";
  } catch (const PhaseError& e) {
    EXPECT_EQ(e.phase(), "build: add");
    EXPECT_EQ(e.failed_rank(), 1);
    EXPECT_EQ(e.detail(), "disk on fire");
  }
  EXPECT_EQ(comm.broadcasts, 1) << "rank 1's message is broadcast from rank 1";
  // A failure outranks a stop request on another rank.
  ScriptedPeerComm failing(kPeerFailed, "bad row 3");
  EXPECT_THROW(agree_or_stop(failing, "phase", nullptr, true), PhaseError);
}

TEST(Agree, ErrorBecomesPhaseErrorNamingPhaseRankAndMessage) {
  auto comm = make_serial_comm();
  const auto error = std::make_exception_ptr(std::runtime_error("disk on fire"));
  try {
    agree(*comm, "build: add", error);
    ADD_FAILURE() << "agree did not throw";
  } catch (const PhaseError& e) {
    EXPECT_EQ(e.phase(), "build: add");
    EXPECT_EQ(e.failed_rank(), 0);
    EXPECT_EQ(e.detail(), "disk on fire");
    const std::string what = e.what();
    EXPECT_NE(what.find("build: add"), std::string::npos) << what;
    EXPECT_NE(what.find("rank 0"), std::string::npos) << what;
    EXPECT_NE(what.find("disk on fire"), std::string::npos) << what;
  }
}

TEST(Agree, NonStandardExceptionStillBecomesPhaseError) {
  auto comm = make_serial_comm();
  EXPECT_THROW(agree(*comm, "phase", std::make_exception_ptr(42)), PhaseError);
}

TEST(RunLocalPhase, RunsWorkOnceAndReturnsWhenItSucceeds) {
  auto comm = make_serial_comm();
  int calls = 0;
  EXPECT_NO_THROW(run_local_phase(*comm, "count", [&] { ++calls; }));
  EXPECT_EQ(calls, 1);
}

TEST(RunLocalPhase, ExceptionFromWorkBecomesPhaseError) {
  auto comm = make_serial_comm();
  try {
    run_local_phase(*comm, "read", [] { throw std::invalid_argument("bad row 17"); });
    ADD_FAILURE() << "run_local_phase did not throw";
  } catch (const PhaseError& e) {
    EXPECT_EQ(e.phase(), "read");
    EXPECT_EQ(e.failed_rank(), 0);
    EXPECT_EQ(e.detail(), "bad row 17");
  }
}

}  // namespace
}  // namespace sf::cluster
