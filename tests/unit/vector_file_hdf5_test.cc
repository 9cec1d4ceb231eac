// Unit tests for HDF5 in io/vector_file: datasets appended and replaced, and the datasets it
// refuses (each error names the file and the dataset).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <numeric>
#include <string>
#include <vector>

#include "io/vector_file.h"
#include "tests/test_util.h"
#include "tests/unit/vector_file_fixtures.h"

namespace sf::io {
namespace {

using sf::testing::TempDir;

// ---- HDF5 -------------------------------------------------------------------------------

TEST(Hdf5Test, RoundTripAndAppendDatasets) {
  TempDir dir;
  const std::string path = dir.file("ann.hdf5");
  const int dim = 24;
  auto train = sf::testing::gaussian_mixture(200, dim, 4, 1);
  auto test = sf::testing::gaussian_mixture(10, dim, 4, 2);
  std::vector<int64_t> nbrs(10 * 5);
  std::iota(nbrs.begin(), nbrs.end(), int64_t{1} << 40);
  write_hdf5_f32(path, "train", train.data(), 200, dim, /*truncate=*/true);
  write_hdf5_f32(path, "test", test.data(), 10, dim, /*truncate=*/false);
  write_hdf5_i64(path, "neighbors", nbrs.data(), 10, 5, /*truncate=*/false);

  EXPECT_TRUE(hdf5_has_dataset(path, "train"));
  EXPECT_TRUE(hdf5_has_dataset(path, "test"));
  EXPECT_TRUE(hdf5_has_dataset(path, "neighbors"));
  EXPECT_FALSE(hdf5_has_dataset(path, "distances"));

  {
    auto f = open_vector_file(path, VectorFormat::kAuto);  // default dataset: train
    EXPECT_EQ(f->path(), path);
    ASSERT_EQ(f->rows(), 200);
    ASSERT_EQ(f->dim(), dim);
    EXPECT_EQ(read_all(*f), train);
    EXPECT_EQ(read_range(*f, 150, 50), slice(train, dim, 150, 50));
    EXPECT_EQ(read_range(*f, 7, 1), slice(train, dim, 7, 1));
    EXPECT_EQ(read_range(*f, 7, 0), std::vector<float>{});
    auto q = open_vector_file(path, VectorFormat::kHdf5, "test");
    EXPECT_EQ(read_all(*q), test);
  }  // HDF5 cannot reopen a file for writing while this process has it open read-only

  // Integer datasets read as float too.
  std::vector<int64_t> small = {1, -2, 3, 40000, 5, 6};
  write_hdf5_i64(path, "ints", small.data(), 3, 2, false);
  auto fi = open_vector_file(path, VectorFormat::kHdf5, "ints");
  EXPECT_EQ(read_all(*fi), (std::vector<float>{1, -2, 3, 40000, 5, 6}));
}

TEST(Hdf5Test, TruncateAndCreateModes) {
  TempDir dir;
  const std::string path = dir.file("m.h5");
  std::vector<float> a = {1, 2, 3, 4};
  std::vector<float> b = {5, 6};
  write_hdf5_f32(path, "a", a.data(), 2, 2, /*truncate=*/false);  // missing: created
  EXPECT_TRUE(hdf5_has_dataset(path, "a"));
  write_hdf5_f32(path, "b", b.data(), 1, 2, /*truncate=*/true);  // a new file
  EXPECT_FALSE(hdf5_has_dataset(path, "a"));
  EXPECT_TRUE(hdf5_has_dataset(path, "b"));
  write_hdf5_f32(path, "b", a.data(), 2, 2, /*truncate=*/false);  // replaces b
  {
    auto f = open_vector_file(path, VectorFormat::kHdf5, "b");
    EXPECT_EQ(f->rows(), 2);
    EXPECT_EQ(read_all(*f), a);
  }
  // An empty dataset is valid.
  write_hdf5_f32(path, "empty", nullptr, 0, 7, false);
  auto e = open_vector_file(path, VectorFormat::kHdf5, "empty");
  EXPECT_EQ(e->rows(), 0);
  EXPECT_EQ(e->dim(), 7);
}

TEST(Hdf5Test, WrongRankNamesFileAndDataset) {
  TempDir dir;
  const std::string path = dir.file("cube.h5");
  std::vector<float> data(2 * 3 * 4, 1.0f);
  write_h5_raw(path, "train", H5T_NATIVE_FLOAT, {2, 3, 4}, data.data());
  std::string msg = input_error_of([&] { open_vector_file(path, VectorFormat::kHdf5); });
  EXPECT_EQ(msg, path + ": dataset 'train' has rank 3, expected 2");
  write_h5_raw(path, "train", H5T_NATIVE_FLOAT, {24}, data.data());
  msg = input_error_of([&] { open_vector_file(path, VectorFormat::kHdf5); });
  EXPECT_EQ(msg, path + ": dataset 'train' has rank 1, expected 2");
}

TEST(Hdf5Test, NonNumericDatasetsRejected) {
  TempDir dir;
  // Fixed-length strings.
  const std::string strings = dir.file("strings.h5");
  {
    H5Guard type{H5Tcopy(H5T_C_S1), H5Tclose};
    ASSERT_GE(H5Tset_size(type.id, 4), 0);
    const char text[2 * 2 * 4 + 1] = "abcdefghijklmnop";
    write_h5_raw(strings, "train", type.id, {2, 2}, text);
  }
  std::string msg = input_error_of([&] { open_vector_file(strings, VectorFormat::kHdf5); });
  EXPECT_CONTAINS(msg, strings + ": dataset 'train' is not numeric");
  // A compound of two floats.
  const std::string compound = dir.file("compound.h5");
  {
    struct Pair {
      float x, y;
    };
    H5Guard type{H5Tcreate(H5T_COMPOUND, sizeof(Pair)), H5Tclose};
    ASSERT_GE(H5Tinsert(type.id, "x", HOFFSET(Pair, x), H5T_NATIVE_FLOAT), 0);
    ASSERT_GE(H5Tinsert(type.id, "y", HOFFSET(Pair, y), H5T_NATIVE_FLOAT), 0);
    const Pair pairs[4] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}};
    write_h5_raw(compound, "train", type.id, {2, 2}, pairs);
  }
  msg = input_error_of([&] { open_vector_file(compound, VectorFormat::kHdf5); });
  EXPECT_CONTAINS(msg, compound + ": dataset 'train' is not numeric");
  msg = input_error_of([&] { read_id_matrix(compound, VectorFormat::kHdf5, "train"); });
  EXPECT_CONTAINS(msg, compound + ": dataset 'train' is not numeric");
}

TEST(Hdf5Test, MissingDatasetAndNonHdf5File) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  std::vector<float> v = {1, 2};
  write_hdf5_f32(path, "test", v.data(), 1, 2, true);
  std::string msg = input_error_of([&] { open_vector_file(path, VectorFormat::kHdf5); });
  EXPECT_EQ(msg, path + ": dataset 'train' not found");

  const std::string fake = dir.file("fake.h5");
  write_bytes(fake, "this is not an HDF5 file");
  msg = input_error_of([&] { open_vector_file(fake, VectorFormat::kAuto); });
  EXPECT_CONTAINS(msg, fake + ": ");
  EXPECT_CONTAINS(msg, "HDF5");
  EXPECT_FALSE(hdf5_has_dataset(fake, "train"));
  EXPECT_FALSE(hdf5_has_dataset(dir.file("missing.h5"), "train"));
  float one = 1.0f;
  write_fvecs(dir.file("x.fvecs"), &one, 1, 1);
  EXPECT_FALSE(hdf5_has_dataset(dir.file("x.fvecs"), "train"));
}

}  // namespace
}  // namespace sf::io
