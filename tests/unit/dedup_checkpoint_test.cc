// The dedup checkpoint files (pipeline/text_dedup.h): a sketch and a list of verdicts read back
// equal what was written; a damaged file, one that does not fit the rank's pieces, or one of
// an older format version is refused with the file's name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/array_file.h"
#include "pipeline/text_dedup.h"
#include "tests/test_util.h"

namespace sf::pipeline {
namespace {

using dd::FinalVerdict;
using dd::LocalCorpus;
using dd::fetch_by_row;

LocalCorpus sample_corpus() {
  LocalCorpus c;
  c.pieces = {io::TextPiece{0, 0, 100, false}, io::TextPiece{1, 0, 0, true}};
  c.piece_lines = {7, 3};
  c.piece_docs = {0, 2, 3};
  c.keep_score = {1.5, 0, -2};
  c.hashes = {{1, 2}, {3, 4}, {1, 2}};
  c.slot = {0, 1, -1};
  c.raw_bytes = {10, 20, 30};
  c.doc_line = {0, 4, 1};
  c.ids = {"\"a\"", "", "17"};
  c.signatures = {1, 2, 3, 4, 5, 6};
  c.shingle_sets = {{5, 9}, {}};
  c.slots = 2;
  c.local_exact_skipped = 1;
  c.text_bytes = 300;
  c.signature_text_bytes = 250;
  c.normalise_seconds = 0.25;
  c.signature_seconds = 0.5;
  c.bad.add(0, io::BadRecord{io::BadKind{}, 2, "not JSON"});
  c.bad.add(1, io::BadRecord{io::BadKind{}, 0, "no text field"});
  return c;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Only a runtime error counts: any other exception fails the test.
constexpr auto error_of = &sf::testing::error_of<std::runtime_error>;

TEST(DedupCheckpoint, SketchRoundTrip) {
  testing::TempDir dir;
  const LocalCorpus c = sample_corpus();
  write_sketch_file(dir.file("s.sfar"), c);
  LocalCorpus back;
  back.pieces = c.pieces;
  read_sketch_file(dir.file("s.sfar"), back, true);
  // Every field: the file written from what was read back is the same bytes.
  write_sketch_file(dir.file("again.sfar"), back);
  EXPECT_EQ(bytes_of(dir.file("again.sfar")), bytes_of(dir.file("s.sfar")));
  ASSERT_EQ(back.hashes.size(), 3u);
  EXPECT_EQ(back.hashes[1].hi, 4u);
  EXPECT_EQ(back.ids, c.ids);
  EXPECT_EQ(back.signatures, c.signatures);
  EXPECT_EQ(back.shingle_sets, c.shingle_sets);
  EXPECT_EQ(back.doc_line, c.doc_line);
  EXPECT_EQ(back.signature_seconds, 0.5);
  EXPECT_EQ(back.bad.total, 2);
  ASSERT_EQ(back.bad.entries.size(), 2u);
  EXPECT_EQ(back.bad.entries.begin()->second.first.at(0), std::make_pair(int64_t{2}, std::string("not JSON")));

  LocalCorpus lean;  // verdicts known: no signatures
  lean.pieces = c.pieces;
  read_sketch_file(dir.file("s.sfar"), lean, false);
  EXPECT_TRUE(lean.signatures.empty());
  EXPECT_TRUE(lean.shingle_sets.empty());
  EXPECT_EQ(lean.ids, c.ids);
}

TEST(DedupCheckpoint, DamagedOrForeignSketchIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.file("s.sfar");
  write_sketch_file(path, sample_corpus());
  const std::string full = bytes_of(path);
  auto read = [&] {
    LocalCorpus back;
    back.pieces = sample_corpus().pieces;
    read_sketch_file(path, back, true);
  };
  std::ofstream(path, std::ios::binary | std::ios::trunc) << full.substr(0, full.size() / 2);
  std::string e = error_of(read);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  std::string damaged = full;
  damaged[full.size() / 2] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
  EXPECT_NE(error_of(read), "");

  // A sketch of another rank count: other pieces.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << full;
  e = error_of([&] {
    LocalCorpus back;
    back.pieces = {io::TextPiece{0, 0, 0, true}};
    read_sketch_file(path, back, true);
  });
  EXPECT_NE(e.find("does not fit this rank's input"), std::string::npos) << e;

  write_verdicts_file(path, {});
  e = error_of(read);
  EXPECT_NE(e.find("holds 'dedup-verdicts', expected 'dedup-sketch'"), std::string::npos) << e;
}

TEST(DedupCheckpoint, VerdictsRoundTrip) {
  testing::TempDir dir;
  const std::vector<FinalVerdict> v = {{3, 1, 1, false, 1.0}, {9, 2, 5, true, 0.8125}};
  write_verdicts_file(dir.file("v.sfar"), v);
  const auto back = read_verdicts_file(dir.file("v.sfar"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].row, 9u);
  EXPECT_EQ(back[1].cluster, 2u);
  EXPECT_EQ(back[1].representative, 5u);
  EXPECT_TRUE(back[1].near);
  EXPECT_FALSE(back[0].near);
  EXPECT_EQ(back[1].similarity, 0.8125);
  std::filesystem::resize_file(dir.file("v.sfar"), 40);
  EXPECT_NE(error_of([&] { read_verdicts_file(dir.file("v.sfar")); }).find(dir.file("v.sfar")),
            std::string::npos);
}

// Format version 1 (every field an array section), as an older shardforge wrote it: refused
// naming the file and both versions. (On --resume the format is also part of the sketch's and
// the verdicts' fingerprints, so such a checkpoint does not verify and is redone: the rank
// reads its input again.)
TEST(DedupCheckpoint, Version1SketchAndVerdictsAreRefused) {
  testing::TempDir dir;
  const std::string sketch = dir.file("sketch-v1.sfar");
  {
    io::ArrayFileWriter out(sketch, "dedup-sketch", 1);
    out.write("piece_lines", std::vector<int64_t>{3});
    out.write("piece_docs", std::vector<int64_t>{0, 1});
    out.write("keep_score", std::vector<double>{0});
    out.close();
  }
  LocalCorpus back;
  back.pieces = {io::TextPiece{0, 0, 0, true}};
  try {
    read_sketch_file(sketch, back, true);
    FAIL() << "a version 1 sketch was read";
  } catch (const io::FormatVersionError& e) {
    EXPECT_EQ(std::string(e.what()), sketch + ": 'dedup-sketch' format version 1, written by an "
                                              "older shardforge; this build reads version 2");
  }
  EXPECT_TRUE(back.keep_score.empty()) << "nothing read";

  const std::string verdicts = dir.file("verdicts-v1.sfar");
  {
    io::ArrayFileWriter out(verdicts, "dedup-verdicts", 1);
    out.write("row", std::vector<uint64_t>{3});
    out.close();
  }
  EXPECT_THROW(read_verdicts_file(verdicts), io::FormatVersionError);
}

TEST(DedupMessages, FetchByRowAnswersEachWantedRowOnce) {
  auto comm = cluster::make_serial_comm();
  int calls = 0;
  const auto got = fetch_by_row(*comm, {0, 10}, {7, 3, 7}, [&](uint64_t row) {
    ++calls;
    return FinalVerdict{row, row + 1, 0, row == 7, 0.5};
  });
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at(7).cluster, 8u);
  EXPECT_TRUE(got.at(7).near);
  EXPECT_FALSE(got.at(3).near);
  EXPECT_TRUE(fetch_by_row(*comm, {0, 10}, {}, [](uint64_t row) { return std::to_string(row); })
                  .empty());
}

}  // namespace
}  // namespace sf::pipeline
