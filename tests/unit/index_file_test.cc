// Unit tests for io/index_file.h: damaged index files fail with an error naming the file.
#include "io/index_file.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sf::io {
namespace {

// An IVF4,Flat index over 200 rows of d = 8, serialized.
std::vector<char> small_ivf_bytes() {
  const int d = 8;
  const std::vector<float> x = sf::testing::gaussian_mixture(200, d, 4, 7);
  faiss::IndexFlatL2 quantizer(d);
  faiss::IndexIVFFlat index(&quantizer, d, 4);
  index.train(200, x.data());
  index.add(200, x.data());
  return serialize_index(index);
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(IndexFile, ReadsWhatItWrote) {
  sf::testing::TempDir dir;
  write_bytes(dir.file("index.faiss"), small_ivf_bytes());
  EXPECT_EQ(read_index_file(dir.file("index.faiss"))->ntotal, 200);
}

TEST(IndexFile, MappedReadHasTheListSizes) {
  sf::testing::TempDir dir;
  const std::vector<char> bytes = small_ivf_bytes();
  write_bytes(dir.file("index.faiss"), bytes);
  const auto full = deserialize_index(bytes);
  const auto mapped = read_index_file_mapped(dir.file("index.faiss"));
  const auto& a = dynamic_cast<const faiss::IndexIVF&>(*full);
  const auto& b = dynamic_cast<const faiss::IndexIVF&>(*mapped);
  ASSERT_EQ(a.nlist, b.nlist);
  for (size_t l = 0; l < a.nlist; ++l) EXPECT_EQ(a.invlists->list_size(l), b.invlists->list_size(l));
  EXPECT_THROW(read_index_file_mapped(dir.file("none.faiss")), std::runtime_error);
}

// Regression (issue 12): a list size damaged into a huge number made FAISS's reader allocate
// that much and throw a bare std::bad_alloc, naming nothing.
// Not in the ASan build: ASan's operator new aborts the process on a request over its 1 TiB
// limit instead of throwing std::bad_alloc (allocator_may_return_null does not change that for a
// throwing new), so there is nothing to catch. The plain build runs it.
#ifndef __SANITIZE_ADDRESS__
TEST(IndexFile, HugeInvertedListSizeNamesTheFile) {
  std::vector<char> bytes = small_ivf_bytes();
  // FAISS's ArrayInvertedLists: "ilar", nlist, code_size (size_t each), "full", then the
  // sizes as a vector: its length (size_t), then one size_t per list.
  const std::string tag = "ilar";
  const auto it = std::search(bytes.begin(), bytes.end(), tag.begin(), tag.end());
  ASSERT_NE(it, bytes.end());
  const size_t at = static_cast<size_t>(it - bytes.begin());
  ASSERT_EQ(std::memcmp(bytes.data() + at + 4 + 2 * sizeof(size_t), "full", 4), 0)
      << "the sizes are not written in full: the offsets below are wrong";
  const size_t first_size = at + 4 + 2 * sizeof(size_t) + 4 + sizeof(size_t);
  const uint64_t huge = uint64_t{1} << 45;  // ids alone: 256 TiB
  std::memcpy(bytes.data() + first_size, &huge, sizeof(huge));
  sf::testing::TempDir dir;
  const std::string path = dir.file("index.faiss");
  write_bytes(path, bytes);
  try {
    read_index_file(path);
    FAIL() << "a damaged list size was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << "not a std::runtime_error naming the file: " << e.what();
  }
}
#endif  // __SANITIZE_ADDRESS__

TEST(IndexFile, TruncatedFileNamesTheFile) {
  std::vector<char> bytes = small_ivf_bytes();
  bytes.resize(bytes.size() / 2);
  sf::testing::TempDir dir;
  const std::string path = dir.file("index.faiss");
  write_bytes(path, bytes);
  try {
    read_index_file(path);
    FAIL() << "a truncated file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sf::io
