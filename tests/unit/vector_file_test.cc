// Unit tests for io/vector_file: format names, corpora spanning files, id matrices, writers
// and in-memory rows (one test file per format: vector_file_<format>_test.cc).
#include "io/vector_file.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "tests/unit/vector_file_fixtures.h"

namespace sf::io {
namespace {

using sf::testing::TempDir;

// ---- format names -----------------------------------------------------------------------

TEST(VectorFormatTest, ParseAndNameRoundTrip) {
  for (VectorFormat f :
       {VectorFormat::kAuto, VectorFormat::kHdf5, VectorFormat::kFvecs, VectorFormat::kBvecs,
        VectorFormat::kIvecs, VectorFormat::kNpy, VectorFormat::kIdx}) {
    EXPECT_EQ(parse_vector_format(vector_format_name(f)), f) << vector_format_name(f);
  }
  EXPECT_STREQ(vector_format_name(VectorFormat::kHdf5), "hdf5");
  EXPECT_STREQ(vector_format_name(VectorFormat::kIdx), "idx");
  EXPECT_THROW(parse_vector_format("parquet"), std::invalid_argument);
  EXPECT_THROW(parse_vector_format(""), std::invalid_argument);
}

TEST(VectorFormatTest, DetectByExtension) {
  EXPECT_EQ(detect_vector_format("/a/b/sift.h5"), VectorFormat::kHdf5);
  EXPECT_EQ(detect_vector_format("glove.HDF5"), VectorFormat::kHdf5);
  EXPECT_EQ(detect_vector_format("base.fvecs"), VectorFormat::kFvecs);
  EXPECT_EQ(detect_vector_format("base.bvecs"), VectorFormat::kBvecs);
  EXPECT_EQ(detect_vector_format("gt.ivecs"), VectorFormat::kIvecs);
  EXPECT_EQ(detect_vector_format("x.npy"), VectorFormat::kNpy);
  EXPECT_EQ(detect_vector_format("train-images-idx3-ubyte.gz"), VectorFormat::kIdx);
  EXPECT_EQ(detect_vector_format("/d/train-images-idx3-ubyte"), VectorFormat::kIdx);
  EXPECT_EQ(detect_vector_format("x.idx"), VectorFormat::kIdx);
  for (const std::string bad : {"notes.txt", "/data.d/noext", "x.fvecs.bak"}) {
    std::string msg = input_error_of([&] { detect_vector_format(bad); });
    EXPECT_CONTAINS(msg, bad);
  }
}

// ---- corpus -----------------------------------------------------------------------------

TEST(CorpusTest, ThreeFilesGlobalRowsSpanBoundaries) {
  TempDir dir;
  const int dim = 6;
  auto data = sf::testing::gaussian_mixture(7 + 11 + 5, dim, 3, 99);
  // One file per format: fvecs (7 rows), npy (11), hdf5 (5); format detected per file.
  write_fvecs(dir.file("p0.fvecs"), data.data(), 7, dim);
  write_npy_f32(dir.file("p1.npy"), data.data() + 7 * dim, 11, dim);
  write_hdf5_f32(dir.file("p2.h5"), "train", data.data() + 18 * dim, 5, dim, true);
  VectorCorpus corpus({dir.file("p0.fvecs"), dir.file("p1.npy"), dir.file("p2.h5")},
                      VectorFormat::kAuto);
  ASSERT_EQ(corpus.rows(), 23);
  ASSERT_EQ(corpus.dim(), dim);
  ASSERT_EQ(corpus.num_files(), 3u);
  EXPECT_EQ(corpus.file(1).path(), dir.file("p1.npy"));
  EXPECT_EQ(corpus.file(2).rows(), 5);
  // Every range, including ones crossing one or both boundaries.
  for (int64_t b = 0; b <= 23; ++b) {
    for (int64_t c = 0; b + c <= 23; ++c) {
      std::vector<float> out(static_cast<size_t>(c) * dim, -1.0f);
      corpus.read(b, c, out.data());
      ASSERT_EQ(out, slice(data, dim, b, c)) << b << "+" << c;
    }
  }
  std::vector<float> out(dim);
  EXPECT_THROW(corpus.read(20, 4, out.data()), std::out_of_range);
}

TEST(CorpusTest, EmptyFilesAreSkipped) {
  TempDir dir;
  const int dim = 3;
  auto data = sf::testing::gaussian_mixture(8, dim, 2, 5);
  write_fvecs(dir.file("a.fvecs"), nullptr, 0, dim);  // empty: no header at all
  write_fvecs(dir.file("b.fvecs"), data.data(), 5, dim);
  write_fvecs(dir.file("c.fvecs"), nullptr, 0, dim);
  write_fvecs(dir.file("d.fvecs"), data.data() + 5 * dim, 3, dim);
  VectorCorpus corpus(
      {dir.file("a.fvecs"), dir.file("b.fvecs"), dir.file("c.fvecs"), dir.file("d.fvecs")},
      VectorFormat::kFvecs);
  EXPECT_EQ(corpus.rows(), 8);
  EXPECT_EQ(corpus.dim(), dim);
  std::vector<float> out(8 * dim);
  corpus.read(0, 8, out.data());
  EXPECT_EQ(out, data);
  corpus.read(4, 2, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 2 * dim), slice(data, dim, 4, 2));

  VectorCorpus none({dir.file("a.fvecs")}, VectorFormat::kFvecs);
  EXPECT_EQ(none.rows(), 0);
  none.read(0, 0, nullptr);
}

TEST(CorpusTest, DimensionMismatchNamesBothFiles) {
  TempDir dir;
  auto a = sf::testing::gaussian_mixture(3, 128, 1, 1);
  auto b = sf::testing::gaussian_mixture(3, 64, 1, 1);
  const std::string f1 = dir.file("one.fvecs"), f2 = dir.file("two.npy");
  write_fvecs(f1, a.data(), 3, 128);
  write_npy_f32(f2, b.data(), 3, 64);
  std::string msg = input_error_of([&] { VectorCorpus({f1, f2}, VectorFormat::kAuto); });
  EXPECT_EQ(msg, f2 + ": dimension 64 differs from " + f1 + " (128)");
}

TEST(CorpusTest, EmptyFileListRejected) {
  std::string msg = input_error_of([] { VectorCorpus({}, VectorFormat::kAuto); });
  EXPECT_FALSE(msg.empty());
}

TEST(CorpusTest, NonFiniteValuesNameFileAndRows) {
  TempDir dir;
  const int dim = 5;
  auto data = sf::testing::gaussian_mixture(30, dim, 2, 8);
  data[(10 + 3) * dim + 4] = std::numeric_limits<float>::quiet_NaN();  // f1 row 3
  data[(20 + 8) * dim + 0] = -std::numeric_limits<float>::infinity();  // f2 row 8
  const std::string f0 = dir.file("f0.fvecs"), f1 = dir.file("f1.fvecs"), f2 = dir.file("f2.npy");
  write_fvecs(f0, data.data(), 10, dim);
  write_fvecs(f1, data.data() + 10 * dim, 10, dim);
  write_npy_f32(f2, data.data() + 20 * dim, 10, dim);
  VectorCorpus corpus({f0, f1, f2}, VectorFormat::kAuto);
  std::vector<float> out(30 * dim);
  std::string msg = input_error_of([&] { corpus.read(5, 20, out.data()); });
  EXPECT_EQ(msg, f1 + ": row 3 (global row 13) has a non-finite value at column 4");
  msg = input_error_of([&] { corpus.read(25, 5, out.data()); });
  EXPECT_EQ(msg, f2 + ": row 8 (global row 28) has a non-finite value at column 0");
  // Ranges that avoid the bad rows read fine.
  corpus.read(0, 13, out.data());
  corpus.read(14, 14, out.data());
  corpus.read(29, 1, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + dim), slice(data, dim, 29, 1));
}

TEST(CorpusTest, RealSiftBaseAndQueries) {
  const std::string base = sf::testing::data_dir() + "/sift-5k.fvecs";
  const std::string queries = sf::testing::data_dir() + "/sift-queries-100.fvecs";
  ASSERT_TRUE(std::filesystem::exists(base))
      << base << " missing (tests/data is in the repository)";
  ASSERT_TRUE(std::filesystem::exists(queries)) << queries << " missing";
  auto f = open_vector_file(base, VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), 5000);
  ASSERT_EQ(f->dim(), 128);
  auto all = read_all(*f);
  float hi = 0;
  for (float v : all) {
    ASSERT_EQ(v, std::floor(v));
    ASSERT_GE(v, 0.0f);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(hi, 191.0f);
  EXPECT_EQ(read_range(*f, 4999, 1), slice(all, 128, 4999, 1));
  EXPECT_EQ(all[4999 * 128 + 0], 36.0f);
  EXPECT_EQ(all[4999 * 128 + 4], 42.0f);

  VectorCorpus corpus({base, queries}, VectorFormat::kFvecs);
  ASSERT_EQ(corpus.rows(), 5100);
  std::vector<float> out(200 * 128);
  corpus.read(4900, 200, out.data());
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 100 * 128), slice(all, 128, 4900, 100));
  auto q = open_vector_file(queries, VectorFormat::kFvecs);
  EXPECT_EQ(std::vector<float>(out.begin() + 100 * 128, out.end()), read_all(*q));
}

// ---- id matrices ------------------------------------------------------------------------

TEST(IdMatrixTest, Ivecs) {
  TempDir dir;
  std::vector<int32_t> ids(40 * 10);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 2654435761u) >> 1);
  write_ivecs(dir.file("gt.ivecs"), ids.data(), 40, 10);
  for (VectorFormat fmt : {VectorFormat::kIvecs, VectorFormat::kAuto}) {
    IdMatrix m = read_id_matrix(dir.file("gt.ivecs"), fmt);
    EXPECT_EQ(m.rows, 40);
    EXPECT_EQ(m.cols, 10);
    EXPECT_EQ(m.values, std::vector<int64_t>(ids.begin(), ids.end()));
  }
}

TEST(IdMatrixTest, NpyInt64AndInt32) {
  TempDir dir;
  std::vector<int64_t> i8 = {0, 1, int64_t{1} << 40, -5, 7, 9};
  write_npy_raw(dir.file("gt8.npy"), "<i8", "(3, 2)", as_bytes(i8));
  IdMatrix m = read_id_matrix(dir.file("gt8.npy"), VectorFormat::kAuto);
  EXPECT_EQ(m.rows, 3);
  EXPECT_EQ(m.cols, 2);
  EXPECT_EQ(m.values, i8);
  std::vector<int32_t> i4 = {3, -1, 2147483647, 0, 5, 6};
  write_npy_raw(dir.file("gt4.npy"), "<i4", "(2, 3)", as_bytes(i4));
  m = read_id_matrix(dir.file("gt4.npy"), VectorFormat::kNpy);
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.values, std::vector<int64_t>(i4.begin(), i4.end()));
  // Float .npy is not an id matrix.
  std::vector<float> f = {1, 2};
  write_npy_f32(dir.file("f.npy"), f.data(), 1, 2);
  std::string msg = input_error_of([&] { read_id_matrix(dir.file("f.npy"), VectorFormat::kNpy); });
  EXPECT_CONTAINS(msg, dir.file("f.npy") + ": dtype '<f4' is not an integer");
}

TEST(IdMatrixTest, Hdf5IntegerDatasets) {
  TempDir dir;
  const std::string path = dir.file("ann.hdf5");
  std::vector<int64_t> nbrs(20 * 100);
  for (size_t i = 0; i < nbrs.size(); ++i)
    nbrs[i] = static_cast<int64_t>(i) * 3 + (int64_t{1} << 33);
  std::vector<float> train = {1, 2, 3, 4};
  write_hdf5_f32(path, "train", train.data(), 2, 2, true);
  write_hdf5_i64(path, "neighbors", nbrs.data(), 20, 100, false);
  IdMatrix m = read_id_matrix(path, VectorFormat::kAuto);  // default: neighbors
  EXPECT_EQ(m.rows, 20);
  EXPECT_EQ(m.cols, 100);
  EXPECT_EQ(m.values, nbrs);
  // int32 datasets (as ann-benchmarks writes them) widen to int64.
  const std::string p32 = dir.file("i32.h5");
  std::vector<int32_t> i32 = {5, 4, 3, 2, 1, 0};
  write_h5_raw(p32, "neighbors", H5T_NATIVE_INT32, {3, 2}, i32.data());
  m = read_id_matrix(p32, VectorFormat::kHdf5);
  EXPECT_EQ(m.values, std::vector<int64_t>(i32.begin(), i32.end()));
  // A float dataset is not.
  std::string msg = input_error_of([&] { read_id_matrix(path, VectorFormat::kHdf5, "train"); });
  EXPECT_CONTAINS(msg, path + ": dataset 'train' is not an integer type");
  msg = input_error_of([&] { read_id_matrix(path, VectorFormat::kHdf5, "distances"); });
  EXPECT_CONTAINS(msg, path + ": dataset 'distances' not found");
}

TEST(IdMatrixTest, FloatFormatsRejected) {
  TempDir dir;
  float v[2] = {1, 2};
  write_fvecs(dir.file("x.fvecs"), v, 1, 2);
  std::string msg =
      input_error_of([&] { read_id_matrix(dir.file("x.fvecs"), VectorFormat::kAuto); });
  EXPECT_CONTAINS(msg, dir.file("x.fvecs") + ": ");
  msg = input_error_of([&] { read_id_matrix(dir.file("missing.ivecs"), VectorFormat::kAuto); });
  EXPECT_EQ(msg, dir.file("missing.ivecs") + ": cannot open: No such file or directory");
}

// ---- writers ----------------------------------------------------------------------------

TEST(WriterTest, FailuresNameThePath) {
  TempDir dir;
  const std::string bad = dir.file("no/such/dir/out");
  float v[4] = {1, 2, 3, 4};
  uint8_t b[4] = {1, 2, 3, 4};
  int32_t i[4] = {1, 2, 3, 4};
  int64_t l[4] = {1, 2, 3, 4};
  auto expect_fails = [&](const std::function<void()>& fn, const std::string& path) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << path;
    } catch (const std::runtime_error& e) {
      EXPECT_CONTAINS(e.what(), path);
    }
  };
  expect_fails([&] { write_fvecs(bad + ".fvecs", v, 2, 2); }, bad + ".fvecs");
  expect_fails([&] { write_bvecs(bad + ".bvecs", b, 2, 2); }, bad + ".bvecs");
  expect_fails([&] { write_ivecs(bad + ".ivecs", i, 2, 2); }, bad + ".ivecs");
  expect_fails([&] { write_npy_f32(bad + ".npy", v, 2, 2); }, bad + ".npy");
  expect_fails([&] { write_hdf5_f32(bad + ".h5", "train", v, 2, 2, true); }, bad + ".h5");
  expect_fails([&] { write_hdf5_i64(bad + ".h5", "n", l, 2, 2, false); }, bad + ".h5");
  // Appending to a file that is not HDF5 fails too.
  write_bytes(dir.file("text.h5"), "plain text");
  expect_fails([&] { write_hdf5_f32(dir.file("text.h5"), "train", v, 2, 2, false); },
               dir.file("text.h5"));
}

TEST(WriterTest, OverwritesExistingFiles) {
  TempDir dir;
  auto big = sf::testing::gaussian_mixture(50, 4, 1, 1);
  auto small = sf::testing::gaussian_mixture(2, 4, 1, 2);
  write_fvecs(dir.file("o.fvecs"), big.data(), 50, 4);
  write_fvecs(dir.file("o.fvecs"), small.data(), 2, 4);
  auto f = open_vector_file(dir.file("o.fvecs"), VectorFormat::kFvecs);
  EXPECT_EQ(f->rows(), 2);
  EXPECT_EQ(read_all(*f), small);
  write_npy_f32(dir.file("o.npy"), big.data(), 50, 4);
  write_npy_f32(dir.file("o.npy"), small.data(), 2, 4);
  auto n = open_vector_file(dir.file("o.npy"), VectorFormat::kNpy);
  EXPECT_EQ(n->rows(), 2);
  EXPECT_EQ(read_all(*n), small);
}

TEST(MemoryRows, ACorpusOfOneRanksRowsInMemory) {
  // Rows 4..6 of a 10 x 2 matrix.
  std::vector<std::unique_ptr<VectorFile>> files;
  files.push_back(make_memory_rows("embeddings", 10, 2, 4, {1, 2, 3, 4, 5, 6}));
  VectorCorpus corpus(std::move(files));
  EXPECT_EQ(corpus.rows(), 10);
  EXPECT_EQ(corpus.dim(), 2);
  std::vector<float> out(4);
  corpus.read(5, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{3, 4, 5, 6}));
  try {
    corpus.read(3, 2, out.data());
    FAIL() << "expected logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("rows [3, 5) are not on this rank (it holds [4, 7))"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_memory_rows("x", 3, 2, 2, {1, 2, 3, 4}), std::logic_error);  // past the end
  EXPECT_THROW(make_memory_rows("x", 3, 2, 0, {1, 2, 3}), std::logic_error);     // not whole rows
  // Non-finite values are caught as for files, naming the source.
  std::vector<std::unique_ptr<VectorFile>> bad;
  bad.push_back(make_memory_rows("embeddings", 2, 1, 0, {1, std::nanf("")}));
  VectorCorpus bad_corpus(std::move(bad));
  EXPECT_THROW(bad_corpus.read(0, 2, out.data()), InputError);
}

TEST(MemoryRows, AViewReadsTheCallersRowsWithoutACopy) {
  std::vector<float> held = {1, 2, 3, 4, 5, 6};  // rows 4..6 of a 10 x 2 matrix
  std::vector<std::unique_ptr<VectorFile>> files;
  files.push_back(make_memory_view("embeddings", 10, 2, 4, held.data(), 3));
  VectorCorpus corpus(std::move(files));
  std::vector<float> out(4);
  held[2] = 30;  // the view sees the caller's data
  corpus.read(5, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{30, 4, 5, 6}));
  EXPECT_THROW(corpus.read(6, 2, out.data()), std::logic_error);
  EXPECT_THROW(make_memory_view("x", 3, 2, 2, held.data(), 2), std::logic_error);  // past the end
}

}  // namespace
}  // namespace sf::io
