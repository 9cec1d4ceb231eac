// Unit tests for stages/index_nprobe.h: the nprobe stored in a written index file is set in
// place, only those 8 bytes change, and stock FAISS reads the new value; behind transforms too.
#include "stages/index_nprobe.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "io/index_file.h"
#include "stages/ivf_index.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

constexpr int kDim = 16;

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

class StoredNprobe : public ::testing::TestWithParam<const char*> {};

TEST_P(StoredNprobe, OnlyTheFieldChangesAndFaissReadsIt) {
  const std::vector<float> x = testing::gaussian_mixture(2000, kDim, 8, 7);
  std::unique_ptr<faiss::Index> built = make_ivf_index(kDim, GetParam(), false);
  built->train(2000, x.data());
  built->add(2000, x.data());
  set_nprobe(built.get(), 3);
  testing::TempDir dir;
  const std::string path = dir.file("index.faiss");
  io::write_index_file(*built, path);
  const std::vector<char> before = file_bytes(path);

  std::unique_ptr<faiss::Index> loaded = io::read_index_file(path);
  set_nprobe(loaded.get(), 5);  // the loaded index's own nprobe does not matter
  EXPECT_EQ(store_nprobe(path, *loaded, 12), 3);
  EXPECT_EQ(find_ivf(loaded.get())->nprobe, 5u) << "the index is left as it was";
  EXPECT_EQ(find_ivf(loaded.get())->invlists->compute_ntotal(), 2000u);

  const std::vector<char> after = file_bytes(path);
  ASSERT_EQ(after.size(), before.size());
  const size_t at = locate_nprobe(*loaded).offset;
  size_t changed = 0;
  for (size_t i = 0; i < after.size(); ++i)
    if (after[i] != before[i]) {
      ++changed;
      EXPECT_TRUE(i >= at && i < at + 8) << "byte " << i << " outside the field at " << at;
    }
  EXPECT_EQ(changed, 1u) << "3 -> 12: one byte";
  std::unique_ptr<faiss::Index> stock(faiss::read_index(path.c_str()));
  EXPECT_EQ(faiss::ivflib::extract_index_ivf(stock.get())->nprobe, 12u);
  EXPECT_EQ(stock->ntotal, 2000);
}

INSTANTIATE_TEST_SUITE_P(IndexNprobe, StoredNprobe,
                         ::testing::Values("IVF16,Flat", "IVF16,SQ8", "IVF16,PQ4x4np",
                                           "PCA8,IVF16,Flat", "OPQ4,IVF16,PQ4x4np"));

TEST(StoredNprobe, AnotherIndexIsRefused) {
  const std::vector<float> x = testing::gaussian_mixture(1000, kDim, 4, 3);
  std::unique_ptr<faiss::Index> a = make_ivf_index(kDim, "IVF8,Flat", false);
  a->train(1000, x.data());
  std::unique_ptr<faiss::Index> b = make_ivf_index(kDim, "IVF16,Flat", false);
  b->train(1000, x.data());
  testing::TempDir dir;
  io::write_index_file(*a, dir.file("a.faiss"));
  const std::vector<char> before = file_bytes(dir.file("a.faiss"));
  EXPECT_THROW(store_nprobe(dir.file("a.faiss"), *b, 4), std::runtime_error);
  EXPECT_EQ(file_bytes(dir.file("a.faiss")), before);
  faiss::IndexFlatL2 flat(kDim);
  EXPECT_THROW(locate_nprobe(flat), std::invalid_argument);
  EXPECT_THROW(store_nprobe(dir.file("missing.faiss"), *a, 4), std::runtime_error);
}

}  // namespace
}  // namespace sf::stages
