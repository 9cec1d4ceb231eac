// io/array_file.h: a round trip keeps every value; a truncated, damaged, mislabelled or
// foreign file is refused with a message naming the file and what is wrong.
#include "io/array_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sf::io {
namespace {

struct Pair {
  uint64_t a;
  double b;
};

class ArrayFileTest : public ::testing::Test {
 protected:
  std::string write_sample() {
    const std::string path = dir_.file("sample.sfar");
    ArrayFileWriter w(path, "test-kind", 3);
    w.write("ints", ints_);
    w.write_strings("names", names_);
    w.write("empty", std::vector<float>{});
    w.write("pairs", std::vector<Pair>{{1, 0.5}, {2, -1.25}});
    w.close();
    return path;
  }
  std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void put_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  // The message of the error that reading the sample file throws.
  std::string read_error(const std::string& path, const char* kind = "test-kind",
                         uint32_t version = 3) {
    try {
      ArrayFileReader r(path, kind, version);
      r.read<int32_t>("ints");
      r.read_strings("names");
      r.read<float>("empty");
      r.read<Pair>("pairs");
      r.close();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  testing::TempDir dir_;
  std::vector<int32_t> ints_{7, -3, 0, 1 << 30};
  std::vector<std::string> names_{"a", "", "{\"id\": 12}", std::string("nul\0byte", 8)};
};

TEST_F(ArrayFileTest, RoundTripKeepsEveryValue) {
  const std::string path = write_sample();
  ArrayFileReader r(path, "test-kind", 3);
  EXPECT_EQ(r.read<int32_t>("ints"), ints_);
  EXPECT_EQ(r.read_strings("names"), names_);
  EXPECT_TRUE(r.read<float>("empty").empty());
  const auto pairs = r.read<Pair>("pairs");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].a, 2u);
  EXPECT_EQ(pairs[1].b, -1.25);
  r.close();
  EXPECT_EQ(read_error(path), "");
}

TEST_F(ArrayFileTest, EveryTruncationIsRefusedNamingTheFile) {
  const std::string path = write_sample();
  const std::string full = bytes_of(path);
  const std::string cut = dir_.file("cut.sfar");
  for (size_t n = 0; n < full.size(); ++n) {
    put_bytes(cut, full.substr(0, n));
    const std::string error = read_error(cut);
    ASSERT_NE(error, "") << "a file cut at " << n << " of " << full.size() << " bytes was read";
    EXPECT_NE(error.find(cut), std::string::npos) << error;
  }
}

TEST_F(ArrayFileTest, DamagedBytesAreFound) {
  const std::string path = write_sample();
  const std::string full = bytes_of(path);
  const std::string bad = dir_.file("bad.sfar");
  // Flip one bit of each byte in turn: a header, count or payload change, always refused.
  for (size_t i = 0; i < full.size(); ++i) {
    std::string damaged = full;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    put_bytes(bad, damaged);
    ASSERT_NE(read_error(bad), "") << "byte " << i << " damaged, the file was still read";
  }
  // A payload byte: only the checksum can tell.
  std::string damaged = full;
  damaged[full.size() - 20] ^= 0x01;
  put_bytes(bad, damaged);
  EXPECT_NE(read_error(bad).find("checksum differs"), std::string::npos) << read_error(bad);
  // Bytes after the trailer.
  put_bytes(bad, full + "x");
  EXPECT_NE(read_error(bad).find("unexpected bytes after the trailer"), std::string::npos);
}

TEST_F(ArrayFileTest, KindVersionAndSectionsMustMatch) {
  const std::string path = write_sample();
  EXPECT_NE(read_error(path, "other-kind").find("holds 'test-kind', expected 'other-kind'"),
            std::string::npos);
  EXPECT_NE(read_error(path, "test-kind", 4)
                .find("format version 3, written by an older shardforge; this build reads version 4"),
            std::string::npos);
  EXPECT_THROW(ArrayFileReader(path, "test-kind", 2), FormatVersionError);  // a newer file
  ArrayFileReader r(path, "test-kind", 3);
  try {
    r.read<int64_t>("ints");
    FAIL() << "element size not checked";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("elements of 4 bytes, expected 8"), std::string::npos)
        << e.what();
  }
  ArrayFileReader r2(path, "test-kind", 3);
  EXPECT_THROW(r2.read<int32_t>("names"), std::runtime_error);
  put_bytes(dir_.file("text.sfar"), "{\"not\": \"an array file\"}\n");
  EXPECT_NE(read_error(dir_.file("text.sfar")).find("not a shardforge array file"),
            std::string::npos);
  EXPECT_NE(read_error(dir_.file("missing.sfar")).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace sf::io
