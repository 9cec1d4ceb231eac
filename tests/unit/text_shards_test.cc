// kept/'s shard writer (io/text_shards.h): shard boundaries by global position, frames cut at
// fixed offsets, the same files for any split of the stream over ranks, and each compression
// read back by shardforge's own reader. The ranks are simulated here as the collective of
// pipeline/kept_shards.h drives them (tests/mpi/kept_shards_mpi_test.cc runs the collective).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "cluster/comm.h"
#include "io/text_corpus.h"
#include "io/text_shards.h"
#include "pipeline/kept_shards.h"
#include "tests/test_util.h"

namespace sf::io {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// JSONL records of varied length ("\n" included), seeded.
std::vector<std::string> make_records(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string text(1 + rng() % 300, 'a' + static_cast<char>(i % 26));
    out.push_back("{\"text\": \"" + text + " " + std::to_string(i) + "\"}\n");
  }
  return out;
}

// Writes `records` split over ranks at `cuts` (record indexes where ranks 1, 2, … begin) as the
// collective does, then joins the pieces; returns the shard files, name -> bytes.
std::map<std::string, std::string> write_split(const std::vector<std::string>& records,
                                               const std::vector<size_t>& cuts,
                                               const ShardLayout& layout, const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<size_t> bounds = {0};
  bounds.insert(bounds.end(), cuts.begin(), cuts.end());
  bounds.push_back(records.size());
  const int ranks = static_cast<int>(bounds.size()) - 1;
  std::vector<SegmentSummary> summaries;
  uint64_t begin = 0;
  for (int r = 0; r < ranks; ++r) {
    std::vector<uint32_t> sizes;
    for (size_t i = bounds[r]; i < bounds[r + 1]; ++i)
      sizes.push_back(static_cast<uint32_t>(records[i].size()));
    summaries.push_back(summarize_segment(begin, sizes, layout));
    begin += summaries.back().bytes;
  }
  std::vector<std::unique_ptr<ShardSegmentWriter>> writers;
  std::vector<std::vector<std::string>> sent(static_cast<size_t>(ranks));  // by receiver
  int64_t shards = 0;
  for (int r = 0; r < ranks; ++r) {
    const SegmentPlan plan = plan_segment(summaries, r, layout);
    shards = plan.shards;
    writers.push_back(std::make_unique<ShardSegmentWriter>(dir, r, layout, summaries[r].begin, plan));
    for (size_t i = bounds[r]; i < bounds[r + 1]; ++i) {
      writers.back()->begin_record();
      // In two writes, as dedup writes a line and its '\n'.
      writers.back()->write(std::string_view(records[i]).substr(0, records[i].size() / 2));
      writers.back()->write(std::string_view(records[i]).substr(records[i].size() / 2));
    }
    std::string prefix = writers.back()->take_prefix();
    if (!prefix.empty()) {
      EXPECT_GE(plan.prefix_owner, 0);
      EXPECT_LT(plan.prefix_owner, r);
      sent[static_cast<size_t>(plan.prefix_owner)].push_back(prefix);
    }
  }
  for (int r = 0; r < ranks; ++r) {
    std::vector<std::string_view> continuation(sent[r].begin(), sent[r].end());
    writers[r]->finish(continuation);
  }
  std::map<std::string, std::string> files;
  for (int64_t s = 0; s < shards; ++s) {
    std::string bytes;
    for (int r = 0; r < ranks; ++r)
      if (writers[r]->first_piece() >= 0 && writers[r]->first_piece() <= s &&
          s <= writers[r]->last_piece())
        bytes += slurp(dir + "/" + shard_piece_name(s, r));
    EXPECT_FALSE(bytes.empty()) << "shard " << s << " has no piece";
    files[shard_file_name(s, layout)] = bytes;
  }
  return files;
}

// The records shardforge's reader finds in the shard files (written into `dir`), in order.
std::vector<std::string> read_back(const std::map<std::string, std::string>& files,
                                   const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> paths;
  for (const auto& [name, bytes] : files) {
    paths.push_back(dir + "/" + name);
    std::ofstream(paths.back(), std::ios::binary) << bytes;
  }
  std::vector<std::string> out;
  const std::vector<TextFile> text_files = stat_text_files(paths);
  for (const TextPiece& piece : plan_text_pieces(text_files, TextFormat::kJsonl, 0, 1))
    read_text_piece(
        text_files[piece.file], piece, TextReadOptions{},
        [&](const TextRecord& rec) { out.push_back(std::string(rec.raw) + "\n"); },
        [&](const BadRecord& bad) { ADD_FAILURE() << "bad record: " << bad.detail; });
  return out;
}

class TextShardsTest : public ::testing::TestWithParam<Compression> {};

TEST_P(TextShardsTest, SameFilesForAnySplitAndReadBack) {
  testing::TempDir tmp;
  const std::vector<std::string> records = make_records(600, 7);
  ShardLayout layout;
  layout.compression = GetParam();
  layout.max_file_bytes = 9000;  // ~50 records per shard
  layout.frame_bytes = 2000;     // frames cut inside records and shards
  const auto one = write_split(records, {}, layout, tmp.file("one"));
  for (const std::vector<size_t>& cuts :
       std::vector<std::vector<size_t>>{{300},
                                        {1, 2, 3},
                                        {5, 5, 5, 200, 201, 599},  // empty ranks
                                        {0, 0, 600},               // all on one middle rank
                                        {50, 100, 150, 200, 250, 300, 350, 400, 450, 500}}) {
    const auto split = write_split(records, cuts, layout, tmp.file("split"));
    EXPECT_EQ(split, one) << "split at " << ::testing::PrintToString(cuts);
  }
  EXPECT_EQ(read_back(one, tmp.file("read")), records);
}

TEST_P(TextShardsTest, EveryShardStartsAtTheFirstRecordOfAWindow) {
  testing::TempDir tmp;
  std::vector<std::string> records = make_records(200, 3);
  records[40] = "{\"text\": \"" + std::string(25000, 'x') + "\"}\n";  // spans windows
  ShardLayout layout;
  layout.compression = GetParam();
  layout.max_file_bytes = 5000;
  layout.frame_bytes = 1024;
  const auto files = write_split(records, {77}, layout, tmp.file("w"));
  // The expected shards, from the global offsets of the record starts.
  std::vector<std::string> expected;
  int64_t window = -1;
  uint64_t pos = 0;
  for (const std::string& r : records) {
    if (static_cast<int64_t>(pos / layout.max_file_bytes) != window) expected.emplace_back();
    window = static_cast<int64_t>(pos / layout.max_file_bytes);
    expected.back() += r;
    pos += r.size();
  }
  ASSERT_EQ(files.size(), expected.size());
  size_t s = 0;
  for (const auto& [name, bytes] : files) {
    EXPECT_EQ(name, shard_file_name(static_cast<int64_t>(s), layout));
    const auto back = read_back({{name, bytes}}, tmp.file("r"));
    std::string joined;
    for (const auto& r : back) joined += r;
    EXPECT_EQ(joined, expected[s]) << name;
    EXPECT_LE(joined.size(), layout.max_file_bytes + 25100) << name;
    ++s;
  }
}

INSTANTIATE_TEST_SUITE_P(Compressions, TextShardsTest,
                         ::testing::Values(Compression::kZstd, Compression::kGzip,
                                           Compression::kNone),
                         [](const auto& info) {
                           return std::string(info.param == Compression::kZstd   ? "zstd"
                                              : info.param == Compression::kGzip ? "gzip"
                                                                                 : "none");
                         });

TEST(TextShards, Names) {
  ShardLayout layout;
  EXPECT_EQ(shard_file_name(0, layout), "00000.jsonl.zst");
  layout.compression = Compression::kGzip;
  EXPECT_EQ(shard_file_name(42, layout), "00042.jsonl.gz");
  layout.compression = Compression::kNone;
  EXPECT_EQ(shard_file_name(123456, layout), "123456.jsonl");
  layout.format = TextFormat::kFortune;
  EXPECT_EQ(shard_file_name(1, layout), "00001");
  EXPECT_EQ(shard_piece_name(3, 12), "00003.00012.piece");
  EXPECT_EQ(parse_compression("gzip"), Compression::kGzip);
  EXPECT_THROW(parse_compression("lz4"), std::invalid_argument);
}

TEST(TextShards, ZstdFramesAreCutEveryFrameBytes) {
  // 10 frames of 1000 bytes in one shard: a frame per 1000 bytes of the stream, independent
  // of where records end.
  testing::TempDir tmp;
  const std::vector<std::string> records(100, std::string(99, 'q') + "\n");
  ShardLayout layout;
  layout.frame_bytes = 1000;
  const auto files = write_split(records, {33}, layout, tmp.file("f"));
  ASSERT_EQ(files.size(), 1u);
  const std::string& z = files.begin()->second;
  int frames = 0;
  for (size_t at = z.find("\x28\xb5\x2f\xfd"); at != std::string::npos;
       at = z.find("\x28\xb5\x2f\xfd", at + 1))
    ++frames;
  EXPECT_EQ(frames, 10);
}

// The collective on one rank (SerialComm): the files in the folder, and what it says.
TEST(TextShards, WriteShardsSerial) {
  testing::TempDir tmp;
  const std::vector<std::string> records = make_records(300, 11);
  std::vector<uint32_t> sizes;
  for (const auto& r : records) sizes.push_back(static_cast<uint32_t>(r.size()));
  ShardLayout layout;
  layout.max_file_bytes = 10000;
  auto comm = cluster::make_serial_comm();
  const pipeline::WrittenShards written = pipeline::write_shards(
      *comm, tmp.file("kept"), layout, sizes, [&](ShardSegmentWriter& out) {
        for (const auto& r : records) {
          out.begin_record();
          out.write(r);
        }
      });
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(tmp.file("kept")))
    files[e.path().filename().string()] = slurp(e.path().string());
  ASSERT_EQ(files.size(), written.names.size());  // no piece left
  for (const auto& name : written.names) EXPECT_TRUE(files.count(name)) << name;
  uint64_t total = 0;
  for (const auto& r : records) total += r.size();
  EXPECT_EQ(written.bytes, total);
  EXPECT_EQ(read_back(files, tmp.file("read")), records);
  // Fewer bytes than announced: an error naming the cause, on every rank.
  const std::string message = testing::error_of([&] {
    pipeline::write_shards(*comm, tmp.file("kept2"), layout, sizes,
                           [&](ShardSegmentWriter& out) { out.write(records[0]); });
  });
  EXPECT_NE(message.find("has an input file changed?"), std::string::npos) << message;
}

}  // namespace
}  // namespace sf::io
