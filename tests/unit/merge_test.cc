// Unit tests for the shard wire format of stages/merge.h: encode_shard / append_shard round
// trips (appending shards in id order equals adding everything to one index), rejection of
// corrupted or mismatched messages, and merge_shards on one rank.
#include "stages/merge.h"

#include <faiss/IndexFlat.h>
#include <faiss/invlists/InvertedLists.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "io/checksum.h"
#include "io/index_file.h"
#include "stages/ivf_index.h"
#include "stages/list_source.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

constexpr int kDim = 16;
constexpr int64_t kRows = 2000;

// Offsets into the shard message (merge.h: magic, version, nlist, code_size, list sizes).
constexpr size_t kVersionOffset = 4;
constexpr size_t kNlistOffset = 8;
constexpr size_t kHeaderBytes = 24;

// A trained, empty index for `factory` (trained on the same data every time).
std::unique_ptr<faiss::Index> trained_empty(const std::string& factory, const std::vector<float>& x,
                                            int d = kDim) {
  omp_set_num_threads(1);
  auto index = make_ivf_index(d, factory, false);
  index->train(static_cast<int64_t>(x.size()) / d, x.data());
  return index;
}

std::unique_ptr<faiss::Index> clone(const faiss::Index& index) {
  return io::deserialize_index(io::serialize_index(index));
}

// Adds rows [begin, end) of x with their row numbers as ids.
void add_rows(faiss::Index& index, const std::vector<float>& x, int64_t begin, int64_t end,
              int d = kDim) {
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(end - begin));
  std::iota(ids.begin(), ids.end(), begin);
  index.add_with_ids(end - begin, x.data() + begin * d, ids.data());
}

int64_t total_list_entries(const faiss::Index& index) {
  const faiss::InvertedLists& lists = *find_ivf(&index)->invlists;
  int64_t n = 0;
  for (size_t l = 0; l < lists.nlist; ++l) n += static_cast<int64_t>(lists.list_size(l));
  return n;
}

class ShardRoundTrip : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { x_ = sf::testing::gaussian_mixture(kRows, kDim, 12, 77); }
  std::vector<float> x_;
};

TEST_P(ShardRoundTrip, AppendingShardsInIdOrderEqualsOneIndexWithAllRows) {
  const std::string factory = GetParam();
  auto empty = trained_empty(factory, x_);
  auto whole = clone(*empty);
  add_rows(*whole, x_, 0, kRows);

  // Three shards with increasing id ranges, one of them empty, appended in order.
  const std::vector<int64_t> edges = {0, 700, 700, kRows};
  auto merged = clone(*empty);
  int64_t appended = 0;
  for (size_t s = 0; s + 1 < edges.size(); ++s) {
    auto shard = clone(*empty);
    add_rows(*shard, x_, edges[s], edges[s + 1]);
    const cluster::Bytes message = encode_shard(*shard);
    const int64_t added = append_shard(*merged, message);
    EXPECT_EQ(added, edges[s + 1] - edges[s]) << "shard " << s;
    appended += added;
  }
  EXPECT_EQ(appended, kRows);
  EXPECT_EQ(merged->ntotal, kRows);
  EXPECT_EQ(find_ivf(merged.get())->ntotal, kRows);
  EXPECT_EQ(total_list_entries(*merged), kRows);
  EXPECT_TRUE(io::serialize_index(*merged) == io::serialize_index(*whole))
      << "merged shards differ from the index that holds every row";
}

TEST_P(ShardRoundTrip, EncodeDoesNotChangeTheShard) {
  auto index = trained_empty(GetParam(), x_);
  add_rows(*index, x_, 0, 500);
  const std::vector<char> before = io::serialize_index(*index);
  (void)encode_shard(*index);
  EXPECT_TRUE(io::serialize_index(*index) == before);
}

TEST_P(ShardRoundTrip, MergeShardsOnOneRankKeepsTheIndex) {
  auto index = trained_empty(GetParam(), x_);
  add_rows(*index, x_, 0, kRows);
  const std::vector<char> before = io::serialize_index(*index);
  auto comm = cluster::make_serial_comm();
  EXPECT_EQ(merge_shards(*comm, *index), kRows);
  EXPECT_TRUE(io::serialize_index(*index) == before);
}

INSTANTIATE_TEST_SUITE_P(Merge, ShardRoundTrip,
                         ::testing::Values("IVF16,Flat", "IVF16,PQ4np", "IVF16,SQ8",
                                           "PCA8,IVF16,Flat"));

class ShardRejection : public ::testing::Test {
 protected:
  void SetUp() override {
    x_ = sf::testing::gaussian_mixture(kRows, kDim, 12, 78);
    target_ = trained_empty("IVF16,Flat", x_);
    auto shard = clone(*target_);
    add_rows(*shard, x_, 0, 300);
    message_ = encode_shard(*shard);
    target_bytes_ = io::serialize_index(*target_);
  }

  // The message must be refused and leave the target index untouched.
  void expect_rejected(const cluster::Bytes& message, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_ANY_THROW(append_shard(*target_, message));
    EXPECT_EQ(target_->ntotal, 0);
    EXPECT_EQ(total_list_entries(*target_), 0);
    EXPECT_TRUE(io::serialize_index(*target_) == target_bytes_) << "the index was changed";
  }

  std::vector<float> x_;
  std::unique_ptr<faiss::Index> target_;
  cluster::Bytes message_;
  std::vector<char> target_bytes_;
};

TEST_F(ShardRejection, TheUncorruptedMessageIsAccepted) {
  // The control for the tests below: the same message, unmodified, goes in.
  EXPECT_EQ(append_shard(*target_, message_), 300);
  EXPECT_EQ(target_->ntotal, 300);
}

TEST_F(ShardRejection, WrongMagic) {
  cluster::Bytes bad = message_;
  bad[0] = 'X';
  expect_rejected(bad, "magic");
}

TEST_F(ShardRejection, WrongVersion) {
  ASSERT_GE(message_.size(), kHeaderBytes);
  uint32_t version = 0;
  std::memcpy(&version, message_.data() + kVersionOffset, sizeof(version));
  ASSERT_EQ(version, kShardFormatVersion);
  for (uint32_t other : {kShardFormatVersion + 1, uint32_t{0}, uint32_t{0xffffffff}}) {
    cluster::Bytes bad = message_;
    std::memcpy(bad.data() + kVersionOffset, &other, sizeof(other));
    expect_rejected(bad, "version " + std::to_string(other));
  }
}

TEST_F(ShardRejection, WrongNlistInHeader) {
  uint64_t nlist = 0;
  std::memcpy(&nlist, message_.data() + kNlistOffset, sizeof(nlist));
  ASSERT_EQ(nlist, 16u);
  cluster::Bytes bad = message_;
  const uint64_t other = 17;
  std::memcpy(bad.data() + kNlistOffset, &other, sizeof(other));
  expect_rejected(bad, "nlist 17 in header");
}

TEST_F(ShardRejection, ShardOfAnIndexWithOtherNlist) {
  auto other = trained_empty("IVF8,Flat", x_);
  add_rows(*other, x_, 0, 100);
  expect_rejected(encode_shard(*other), "IVF8 shard into IVF16 index");
}

TEST_F(ShardRejection, ShardOfAnIndexWithOtherCodeSize) {
  auto sq = trained_empty("IVF16,SQ8", x_);
  add_rows(*sq, x_, 0, 100);
  expect_rejected(encode_shard(*sq), "SQ8 shard into Flat index");
  const std::vector<float> wide = sf::testing::gaussian_mixture(kRows, 2 * kDim, 12, 79);
  auto wider = trained_empty("IVF16,Flat", wide, 2 * kDim);
  add_rows(*wider, wide, 0, 100, 2 * kDim);
  expect_rejected(encode_shard(*wider), "d=32 shard into d=16 index");
}

TEST_F(ShardRejection, EmptyOrTruncatedMessage) {
  expect_rejected(cluster::Bytes{}, "empty");
  expect_rejected(cluster::Bytes(message_.begin(), message_.begin() + kHeaderBytes - 1),
                  "truncated header");
  expect_rejected(cluster::Bytes(message_.begin(), message_.begin() + kHeaderBytes + 8),
                  "truncated list sizes");
}

TEST_F(ShardRejection, TruncatedPayloadThrows) {
  // Cut inside the last list's codes. (Lists before the cut may already be appended: the
  // format gives no atomicity, and merge_shards stops all ranks on any failure.)
  cluster::Bytes bad(message_.begin(), message_.end() - 1);
  EXPECT_ANY_THROW(append_shard(*target_, bad));
}

TEST_F(ShardRejection, HugeListLengthThrowsInsteadOfReadingPastTheMessage) {
  // List 0's length set to 2^61: length * sizeof(id) wraps around 64 bits.
  cluster::Bytes bad = message_;
  const uint64_t huge = uint64_t{1} << 61;
  std::memcpy(bad.data() + kHeaderBytes, &huge, sizeof(huge));
  EXPECT_ANY_THROW(append_shard(*target_, bad));
}

TEST(Merge, EncodeShardOfANonIvfIndexThrows) {
  // Bug: encode_shard dereferences find_ivf() without checking it (append_shard checks and
  // throws std::invalid_argument), so a non-IVF index crashes instead of throwing.
  faiss::IndexFlatL2 flat(kDim);
  EXPECT_THROW(encode_shard(flat), std::invalid_argument);
}

TEST(Merge, AppendShardIntoANonIvfIndexThrows) {
  const std::vector<float> x = sf::testing::gaussian_mixture(500, kDim, 4, 5);
  auto shard = trained_empty("IVF16,Flat", x);
  add_rows(*shard, x, 0, 100);
  faiss::IndexFlatL2 flat(kDim);
  EXPECT_THROW(append_shard(flat, encode_shard(*shard)), std::invalid_argument);
}

// One process: the collective merge writes faiss::write_index's bytes, for a full index and
// for one whose lists are mostly empty (FAISS then lists the sizes sparsely: "sprs").
TEST(CollectiveMerge, OneRankWritesFaissBytesFullAndSparse) {
  const std::vector<float> x = sf::testing::gaussian_mixture(kRows, kDim, 12, 80);
  auto serial = cluster::make_serial_comm();
  const sf::testing::TempDir dir;
  for (const int64_t rows : {kRows, int64_t{5}}) {  // 5 rows in 32 lists: sparse sizes
    auto index = trained_empty("IVF32,Flat", x);
    add_rows(*index, x, 0, rows);
    const std::string path = dir.file("index-" + std::to_string(rows) + ".faiss");
    const MergedIndex out = write_merged_index(*serial, *index, path, 1000);
    EXPECT_EQ(out.ntotal, rows);
    EXPECT_EQ(index->ntotal, rows) << "the shard changed";
    const std::vector<char> expected = io::serialize_index(*index);
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> written((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    EXPECT_EQ(out.bytes, expected.size());
    EXPECT_TRUE(written == expected) << rows << " rows: the file differs from FAISS's bytes";
    EXPECT_EQ(io::read_index_file(path)->ntotal, rows);
    // The check's read-back gives the completion marker the file's digest.
    const io::FileDigest digest = io::digest_file(path);
    EXPECT_EQ(out.digest.bytes, digest.bytes);
    EXPECT_EQ(out.digest.xxh3, digest.xxh3);
  }
}

// One process, on disk: the run directory moves (index.faiss records the lists' file by name,
// read_index_file finds it next to index.faiss); a truncated lists' file is refused.
TEST(CollectiveMerge, OnDiskLayoutReadsFromAMovedFolderAndRefusesATruncatedOne) {
  const std::vector<float> x = sf::testing::gaussian_mixture(kRows, kDim, 12, 80);
  auto serial = cluster::make_serial_comm();
  const sf::testing::TempDir dir;
  auto index = trained_empty("IVF32,Flat", x);
  add_rows(*index, x, 0, kRows);
  std::filesystem::create_directories(dir.file("a"));
  const MergedIndex out = write_merged_index(
      *serial, *index, {dir.file("a/index.faiss"), dir.file("a/index.ivfdata"), "index.ivfdata"},
      1000);
  EXPECT_EQ(out.ntotal, kRows);
  EXPECT_EQ(out.digest.xxh3, io::digest_file(dir.file("a/index.ivfdata")).xxh3)
      << "the digest is the lists' file's, which every rank wrote";
  std::filesystem::rename(dir.file("a"), dir.file("b"));
  {
    const std::unique_ptr<faiss::Index> read = io::read_index_file(dir.file("b/index.faiss"));
    EXPECT_EQ(read->ntotal, kRows);
    std::vector<float> d1(10), d2(10);
    std::vector<faiss::Index::idx_t> l1(10), l2(10);
    index->search(1, x.data(), 10, d1.data(), l1.data());
    read->search(1, x.data(), 10, d2.data(), l2.data());
    EXPECT_TRUE(l1 == l2);
  }  // unmapped (and FAISS's prefetch threads joined) before the file shrinks
  std::filesystem::resize_file(dir.file("b/index.ivfdata"), 100);
  try {
    io::read_index_file(dir.file("b/index.faiss"));
    ADD_FAILURE() << "a truncated index.ivfdata was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("index.ivfdata has 100 bytes"), std::string::npos)
        << e.what();
  }
  // No vector: FAISS cannot map an empty file, so the layout refuses it before writing.
  auto empty = trained_empty("IVF32,Flat", x);
  EXPECT_THROW(write_merged_index(*serial, *empty,
                                  {dir.file("e.faiss"), dir.file("e.ivfdata"), "e.ivfdata"}, 1000),
               std::invalid_argument);
}

// The add stage's pieces as files: rows [0, rows) in pieces of `piece_rows`, each its own
// index (a clone of `trained`) encoded in the shard wire format. Returns the paths in row order.
std::vector<std::string> write_pieces(const faiss::Index& trained, const std::vector<float>& x,
                                      int64_t rows, int64_t piece_rows,
                                      const sf::testing::TempDir& dir, const std::string& name) {
  std::vector<std::string> paths;
  for (int64_t begin = 0; begin < rows; begin += piece_rows) {
    auto piece = clone(trained);
    add_rows(*piece, x, begin, std::min(rows, begin + piece_rows));
    const cluster::Bytes bytes = encode_shard(*piece);
    paths.push_back(dir.file(name + "-" + std::to_string(begin) + ".sfsh"));
    std::ofstream(paths.back(), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  return paths;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Out of core: the lists read from the pieces on disk are the shard's, entry for entry, and the
// collective merge writes the same bytes from them, for any piece size and round size (rounds
// that cut entries: 1000 bytes is no multiple of a 64-byte code).
TEST(ListSource, PiecesOnDiskReadAsTheShardInMemory) {
  const std::vector<float> x = sf::testing::gaussian_mixture(kRows, kDim, 12, 81);
  auto serial = cluster::make_serial_comm();
  const sf::testing::TempDir dir;
  for (const char* factory : {"IVF32,Flat", "IVF16,PQ4np", "IVF16,SQ8"}) {
    auto trained = trained_empty(factory, x);
    auto shard = clone(*trained);
    add_rows(*shard, x, 0, kRows);
    const std::unique_ptr<ListSource> memory = lists_in_memory(*shard);
    const std::string expected_path = dir.file("memory.faiss");
    write_merged_index(*serial, *shard, expected_path, 1000);
    const std::vector<char> expected = file_bytes(expected_path);
    EXPECT_TRUE(expected == io::serialize_index(*shard)) << factory;
    for (const int64_t piece_rows : {int64_t{7}, int64_t{333}, kRows}) {
      const std::string label = std::string(factory) + ", pieces of " + std::to_string(piece_rows);
      const std::vector<std::string> paths =
          write_pieces(*trained, x, kRows, piece_rows, dir, "p" + std::to_string(piece_rows));
      const std::unique_ptr<ListSource> pieces =
          lists_in_pieces(paths, memory->nlist(), memory->code_size());
      const size_t cs = memory->code_size();
      for (size_t l = 0; l < memory->nlist(); ++l) {
        const uint64_t n = memory->list_size(l);
        ASSERT_EQ(pieces->list_size(l), n) << label << ", list " << l;
        // Whole, and a range inside (it starts and ends inside pieces).
        for (const auto& [b, e] : {std::pair<uint64_t, uint64_t>{0, n}, {n / 3, n - n / 4}}) {
          std::vector<uint8_t> want(cs * (e - b) + 1), got(cs * (e - b) + 1);
          memory->read_codes(l, b, e, want.data());
          pieces->read_codes(l, b, e, got.data());
          EXPECT_TRUE(want == got) << label << ", list " << l << " codes " << b << "-" << e;
          std::vector<int64_t> want_ids(e - b + 1), got_ids(e - b + 1);
          memory->read_ids(l, b, e, want_ids.data());
          pieces->read_ids(l, b, e, got_ids.data());
          EXPECT_TRUE(want_ids == got_ids) << label << ", list " << l << " ids " << b << "-" << e;
        }
      }
      const std::string path = dir.file("pieces.faiss");
      const MergedIndex out = write_merged_index(*serial, *trained, *pieces, path, 1000);
      EXPECT_EQ(out.ntotal, kRows) << label;
      EXPECT_EQ(trained->ntotal, 0) << label << ": the trained index changed";
      EXPECT_TRUE(file_bytes(path) == expected) << label << ": not the in-memory merge's bytes";
    }
  }
}

TEST(ListSource, NoPiecesAreEmptyLists) {
  const auto lists = lists_in_pieces({}, 8, 16);
  EXPECT_EQ(lists->nlist(), 8u);
  for (size_t l = 0; l < 8; ++l) EXPECT_EQ(lists->list_size(l), 0u);
}

TEST(ListSource, ABadPieceThrowsNamingIt) {
  const std::vector<float> x = sf::testing::gaussian_mixture(kRows, kDim, 12, 82);
  const sf::testing::TempDir dir;
  auto trained = trained_empty("IVF16,Flat", x);
  const std::vector<std::string> paths = write_pieces(*trained, x, 500, 500, dir, "bad");
  const size_t cs = find_ivf(trained.get())->code_size;
  // Another index's lists.
  EXPECT_THROW(lists_in_pieces(paths, 32, cs), std::runtime_error);
  EXPECT_THROW(lists_in_pieces(paths, 16, cs + 1), std::runtime_error);
  EXPECT_THROW(lists_in_pieces({dir.file("missing.sfsh")}, 16, cs), std::runtime_error);
  // Cut short, or with a list longer than the file.
  std::vector<char> bytes = file_bytes(paths[0]);
  const auto write = [&](const std::vector<char>& b) {
    std::ofstream(paths[0], std::ios::binary | std::ios::trunc)
        .write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  write({bytes.begin(), bytes.end() - 1});
  try {
    lists_in_pieces(paths, 16, cs);
    ADD_FAILURE() << "a truncated piece was taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(paths[0]), std::string::npos) << e.what();
  }
  std::vector<char> huge = bytes;
  const uint64_t n = uint64_t{1} << 61;
  std::memcpy(huge.data() + kHeaderBytes, &n, sizeof(n));
  write(huge);
  EXPECT_THROW(lists_in_pieces(paths, 16, cs), std::runtime_error);
}


}  // namespace
}  // namespace sf::stages
