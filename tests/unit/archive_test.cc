// cluster/archive.h: typed values round-trip through Boost binary archives; damaged,
// truncated and newer-version buffers are refused naming what was read; the typed
// collectives over SerialComm.
#include "cluster/archive.h"

#include <gtest/gtest.h>

#include <boost/serialization/version.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace sf::cluster {
namespace {

struct Record {
  uint64_t row = 0;
  std::string name;
  std::vector<double> values;
  std::pair<int32_t, bool> flag{0, false};

  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    ar & row & name & values & flag;
  }
  bool operator==(const Record& o) const {
    return row == o.row && name == o.name && values == o.values && flag == o.flag;
  }
};

// Two versions of one record, as an older and a newer build see it.
struct OldNote {
  int32_t a = 0;
  template <class Ar>
  void serialize(Ar& ar, unsigned version) {
    if (Ar::is_loading::value) check_version<OldNote>(version, 1);
    ar & a;
  }
};
struct NewNote {
  int32_t a = 0, b = -1;
  template <class Ar>
  void serialize(Ar& ar, unsigned version) {
    ar & a;
    if (version >= 2) ar & b;  // version 1 (OldNote's) has no b: read, b stays -1
  }
};
struct RefusingNote {
  int32_t a = 0;
  template <class Ar>
  void serialize(Ar& ar, unsigned version) {
    if (Ar::is_loading::value) check_version<RefusingNote>(version, 2);
    ar & a;
  }
};

}  // namespace
}  // namespace sf::cluster

BOOST_CLASS_VERSION(sf::cluster::OldNote, 1)
BOOST_CLASS_VERSION(sf::cluster::NewNote, 2)
BOOST_CLASS_VERSION(sf::cluster::RefusingNote, 2)

namespace sf::cluster {
namespace {

using sf::testing::error_of;

TEST(Archive, RoundTripsRecordsAndContainers) {
  const std::vector<Record> records = {{7, "seven", {1.5, -2.25}, {3, true}},
                                       {0, "", {}, {-1, false}},
                                       {UINT64_MAX, std::string(1000, 'x'), {0.1}, {0, true}}};
  EXPECT_EQ(from_bytes<std::vector<Record>>(to_bytes(records), "records"), records);
  EXPECT_TRUE(from_bytes<std::vector<Record>>(to_bytes(std::vector<Record>{}), "none").empty());
  const std::vector<uint32_t> raw = {1, 2, 3, 0xffffffffu};
  EXPECT_EQ(from_bytes<std::vector<uint32_t>>(to_bytes(raw), "raw"), raw);
}

TEST(Archive, TruncatedOrDamagedBytesAreRefusedNamingWhat) {
  const Bytes good = to_bytes(Record{7, "seven", {1.5}, {1, true}});
  Bytes truncated(good.begin(), good.end() - 3);
  const std::string e1 = error_of([&] { from_bytes<Record>(truncated, "tier plan"); });
  EXPECT_EQ(e1.rfind("tier plan: unreadable", 0), 0u) << e1;
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_NE(error_of([&] { from_bytes<Record>(longer, "fate"); }).find("fate: unreadable: 1 byte"),
            std::string::npos);
  Bytes garbage(good.size(), 'z');
  EXPECT_EQ(error_of([&] { from_bytes<Record>(garbage, "garbage"); }).rfind("garbage: unreadable", 0), 0u);
  EXPECT_EQ(error_of([&] { from_bytes<Record>(Bytes{}, "empty"); }).rfind("empty: unreadable", 0), 0u);
}

TEST(Archive, OlderVersionIsReadOrRefusedAndNewerIsRefused) {
  const Bytes v1 = to_bytes(OldNote{5});
  const NewNote upgraded = from_bytes<NewNote>(v1, "note");  // an older version read
  EXPECT_EQ(upgraded.a, 5);
  EXPECT_EQ(upgraded.b, -1);
  const NewNote again = from_bytes<NewNote>(to_bytes(NewNote{5, 6}), "note");
  EXPECT_EQ(again.b, 6);
  try {  // an older version refused by serialize()
    from_bytes<RefusingNote>(v1, "checkpoint.bin");
    FAIL() << "read a refused version";
  } catch (const ArchiveVersionError& e) {
    EXPECT_STREQ(e.what(),
                 "checkpoint.bin: format version 1, written by an older shardforge; "
                 "this build reads version 2");
  }
  try {  // a newer version than this build's
    from_bytes<OldNote>(to_bytes(NewNote{5, 6}), "checkpoint.bin");
    FAIL() << "read a newer version";
  } catch (const ArchiveVersionError& e) {
    EXPECT_STREQ(e.what(),
                 "checkpoint.bin: format version 2, written by a newer shardforge; "
                 "this build reads version 1");
  }
}

TEST(Archive, TypedCollectivesOnOneRank) {
  auto comm = make_serial_comm();
  const Record mine{1, "one", {1.0}, {1, true}};
  const std::vector<Record> all = allgather_as(*comm, mine, "records");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], mine);
  EXPECT_EQ(broadcast_as(*comm, std::string("plan"), 0, "plan"), "plan");
  const std::vector<std::vector<Record>> back =
      alltoallv_as(*comm, std::vector<std::vector<Record>>{{mine, mine}}, "records");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], (std::vector<Record>{mine, mine}));
}

}  // namespace
}  // namespace sf::cluster
