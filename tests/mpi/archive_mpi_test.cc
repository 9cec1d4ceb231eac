// MPI tests of cluster/archive.h (run with 1, 2 and 4 ranks): typed messages of sizes that
// differ per rank (empty ones included) arrive whole, from the right rank.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/archive.h"
#include "tests/mpi/mpi_env.h"

namespace sf::cluster {
namespace {

using sf::testing::world;

struct Note {
  int32_t from = -1, to = -1;
  std::string text;
  std::vector<uint64_t> rows;

  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar & from & to & text & rows;
  }
};

// What rank `from` sends rank `to`: (from + to) % 3 notes, so some messages are empty.
std::vector<Note> notes(int from, int to) {
  std::vector<Note> out;
  for (int i = 0; i < (from + to) % 3; ++i)
    out.push_back({from, to, std::string(static_cast<size_t>(from * 10 + i), 'a' + i),
                   std::vector<uint64_t>(static_cast<size_t>(to + i), uint64_t(from) << 32 | i)});
  return out;
}

void expect_notes(const std::vector<Note>& got, int from, int to) {
  const std::vector<Note> want = notes(from, to);
  ASSERT_EQ(got.size(), want.size()) << "from " << from << " to " << to;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].from, from);
    EXPECT_EQ(got[i].to, to);
    EXPECT_EQ(got[i].text, want[i].text);
    EXPECT_EQ(got[i].rows, want[i].rows);
  }
}

TEST(MpiArchive, AlltoallvAsDeliversEachRanksTypedMessages) {
  Comm& comm = world();
  std::vector<std::vector<Note>> outgoing;
  for (int d = 0; d < comm.size(); ++d) outgoing.push_back(notes(comm.rank(), d));
  const std::vector<std::vector<Note>> incoming = alltoallv_as(comm, outgoing, "notes");
  ASSERT_EQ(static_cast<int>(incoming.size()), comm.size());
  for (int s = 0; s < comm.size(); ++s) expect_notes(incoming[s], s, comm.rank());
}

TEST(MpiArchive, AllgatherAsAndBroadcastAs) {
  Comm& comm = world();
  const std::vector<std::vector<Note>> all = allgather_as(comm, notes(comm.rank(), 1), "notes");
  ASSERT_EQ(static_cast<int>(all.size()), comm.size());
  for (int r = 0; r < comm.size(); ++r) expect_notes(all[r], r, 1);
  const int root = comm.size() - 1;
  const std::vector<Note> plan = broadcast_as(comm, notes(comm.rank(), 2), root, "plan");
  expect_notes(plan, root, 2);
}

}  // namespace
}  // namespace sf::cluster
