// kept/'s shards written by the collective (pipeline/kept_shards.h) at this run's rank count are
// the files one process writes for the same records: names and bytes, for each compression,
// with shards and frames that span ranks and ranks that hold nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/kept_shards.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::pipeline {
namespace {

namespace fs = std::filesystem;
using sf::testing::world;

std::map<std::string, std::string> files_in(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    out[e.path().filename().string()] = s.str();
  }
  return out;
}

class KeptShardsMpiTest : public ::testing::TestWithParam<io::Compression> {};

TEST_P(KeptShardsMpiTest, SameFilesAsOneProcess) {
  cluster::Comm& comm = world();
  const testing::SharedTempDir dir(comm);
  // 500 records of 1..400 bytes; rank r holds a share skewed by rank (the last rank none when
  // there are more than two).
  std::vector<std::string> records;
  for (int i = 0; i < 500; ++i)
    records.push_back("{\"text\": \"" + std::string(static_cast<size_t>((i * 37) % 400), 'a' + i % 26) +
                      "\"}\n");
  const int ranks = comm.size();
  std::vector<size_t> begin(static_cast<size_t>(ranks) + 1, records.size());
  begin[0] = 0;
  for (int r = 1; r < ranks; ++r) begin[r] = records.size() * static_cast<size_t>(r * r) /
                                             static_cast<size_t>(ranks * ranks);
  if (ranks > 2) begin[static_cast<size_t>(ranks) - 1] = records.size();  // the last: none
  io::ShardLayout layout;
  layout.compression = GetParam();
  layout.max_file_bytes = 7000;
  layout.frame_bytes = 1500;
  auto write = [&](cluster::Comm& c, size_t from, size_t to, const std::string& out) {
    std::vector<uint32_t> sizes;
    for (size_t i = from; i < to; ++i) sizes.push_back(static_cast<uint32_t>(records[i].size()));
    return write_shards(c, out, layout, sizes, [&](io::ShardSegmentWriter& w) {
      for (size_t i = from; i < to; ++i) {
        w.begin_record();
        w.write(records[i]);
      }
    });
  };
  const size_t mine = static_cast<size_t>(comm.rank());
  const WrittenShards written = write(comm, begin[mine], begin[mine + 1], dir.file("kept"));
  std::string problem;
  if (comm.rank() == 0) {
    auto serial = cluster::make_serial_comm();
    const WrittenShards reference = write(*serial, 0, records.size(), dir.file("one"));
    if (written.names != reference.names) problem = "another shard list than one process's";
    if (written.bytes != reference.bytes) problem = "another byte count";
    if (files_in(dir.file("kept")) != files_in(dir.file("one")))
      problem = "the files differ from one process's";
    if (written.names.size() < 10) problem = "too few shards to test";
  }
  EXPECT_EQ(testing::problems_on_any_rank(comm, problem), "");
}

INSTANTIATE_TEST_SUITE_P(Compressions, KeptShardsMpiTest,
                         ::testing::Values(io::Compression::kZstd, io::Compression::kGzip,
                                           io::Compression::kNone));

}  // namespace
}  // namespace sf::pipeline
