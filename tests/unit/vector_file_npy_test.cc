// Unit tests for .npy in io/vector_file: dtypes, header versions and bad headers.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/vector_file.h"
#include "tests/test_util.h"
#include "tests/unit/vector_file_fixtures.h"

namespace sf::io {
namespace {

using sf::testing::TempDir;

// ---- .npy -------------------------------------------------------------------------------

TEST(NpyTest, F32RoundTripExactAndHeaderPadded) {
  TempDir dir;
  const int64_t rows = 123;
  const int dim = 31;
  auto data = sf::testing::gaussian_mixture(rows, dim, 4, 11);
  const std::string path = dir.file("a.npy");
  write_npy_f32(path, data.data(), rows, dim);
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_total = bytes.size() - data.size() * sizeof(float);
  EXPECT_EQ(header_total % 64, 0u);
  EXPECT_EQ(bytes[header_total - 1], '\n');
  EXPECT_NE(bytes.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(bytes.find("(123, 31)"), std::string::npos);

  auto f = open_vector_file(path, VectorFormat::kAuto);
  EXPECT_EQ(f->rows(), rows);
  EXPECT_EQ(f->dim(), dim);
  EXPECT_EQ(read_all(*f), data);
  EXPECT_EQ(read_range(*f, 100, 23), slice(data, dim, 100, 23));
  EXPECT_EQ(read_range(*f, 5, 1), slice(data, dim, 5, 1));
}

// NpyF32Writer (run's embeddings, appended batch by batch): the same bytes as write_npy_f32;
// a row count other than the header's is refused at close(); a file of no rows reads back.
TEST(NpyTest, RowBatchWriterEqualsWholeWrite) {
  TempDir dir;
  const int64_t rows = 123;
  const int dim = 31;
  auto data = sf::testing::gaussian_mixture(rows, dim, 4, 11);
  write_npy_f32(dir.file("whole.npy"), data.data(), rows, dim);
  {
    NpyF32Writer out(dir.file("batches.npy"), rows, dim);
    for (int64_t lo = 0; lo < rows; lo += 50)
      out.append(data.data() + lo * dim, std::min<int64_t>(50, rows - lo));
    out.close();
  }
  EXPECT_EQ(read_bytes(dir.file("batches.npy")), read_bytes(dir.file("whole.npy")));
  NpyF32Writer short_of(dir.file("short.npy"), rows, dim);
  short_of.append(data.data(), 10);
  EXPECT_THROW(short_of.close(), std::runtime_error);
  NpyF32Writer over(dir.file("over.npy"), 1, dim);
  EXPECT_THROW(over.append(data.data(), 2), std::runtime_error);
  {
    NpyF32Writer empty(dir.file("empty.npy"), 0, dim);
    empty.close();
  }
  auto f = open_vector_file(dir.file("empty.npy"), VectorFormat::kNpy);
  EXPECT_EQ(f->rows(), 0);
  EXPECT_EQ(f->dim(), dim);
  // One file per rank, a rank of no rows among them: one corpus (run's open_rank_vectors).
  VectorCorpus corpus({dir.file("whole.npy"), dir.file("empty.npy"), dir.file("batches.npy")},
                      VectorFormat::kNpy);
  EXPECT_EQ(corpus.rows(), 2 * rows);
  std::vector<float> across(static_cast<size_t>(4 * dim));
  corpus.read(rows - 2, 4, across.data());
  std::vector<float> want = slice(data, dim, rows - 2, 2), head = slice(data, dim, 0, 2);
  want.insert(want.end(), head.begin(), head.end());
  EXPECT_EQ(across, want);
}

TEST(NpyTest, OtherDtypesConvertToFloat) {
  TempDir dir;
  const int64_t rows = 6;
  const int dim = 5;
  std::vector<double> f8(rows * dim);
  std::vector<uint8_t> u1(rows * dim);
  std::vector<int32_t> i4(rows * dim);
  std::vector<int64_t> i8(rows * dim);
  std::vector<float> expect(rows * dim);
  for (size_t i = 0; i < expect.size(); ++i) {
    f8[i] = 0.25 * static_cast<double>(i) - 3.0;
    u1[i] = static_cast<uint8_t>(i * 8);
    i4[i] = static_cast<int32_t>(i) * -1000;
    i8[i] = static_cast<int64_t>(i) * 1000000;
  }
  write_npy_raw(dir.file("f8.npy"), "<f8", "(6, 5)", as_bytes(f8));
  write_npy_raw(dir.file("u1.npy"), "|u1", "(6, 5)", as_bytes(u1));
  write_npy_raw(dir.file("i4.npy"), "<i4", "(6, 5)", as_bytes(i4), /*major=*/2);
  write_npy_raw(dir.file("i8.npy"), "<i8", "(6, 5)", as_bytes(i8));
  auto check = [&](const std::string& name, auto& src) {
    auto f = open_vector_file(dir.file(name), VectorFormat::kNpy);
    ASSERT_EQ(f->rows(), rows) << name;
    ASSERT_EQ(f->dim(), dim) << name;
    auto got = read_range(*f, 1, 4);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], static_cast<float>(src[dim + i])) << name << " value " << i;
    }
  };
  check("f8.npy", f8);
  check("u1.npy", u1);
  check("i4.npy", i4);
  check("i8.npy", i8);
}

TEST(NpyTest, Version2HeaderF32) {
  TempDir dir;
  auto data = sf::testing::gaussian_mixture(4, 3, 1, 5);
  write_npy_raw(dir.file("v2.npy"), "<f4", "(4, 3)", as_bytes(data), /*major=*/2);
  auto f = open_vector_file(dir.file("v2.npy"), VectorFormat::kNpy);
  EXPECT_EQ(read_all(*f), data);
}

TEST(NpyTest, BadHeadersNameTheFileAndReason) {
  TempDir dir;
  std::string four_floats(16, '\0');
  struct Case {
    std::string name, descr, shape;
    bool fortran;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"f2.npy", "<f2", "(2, 2)", false, "dtype '<f2' is not supported"},
           {"be.npy", ">f4", "(2, 2)", false, "dtype '>f4' is not supported"},
           {"str.npy", "<U4", "(1, 1)", false, "dtype '<U4'"},
           {"fo.npy", "<f4", "(2, 2)", true, "fortran_order"},
           {"1d.npy", "<f4", "(4,)", false, "shape (4,) is not 2-D"},
           {"3d.npy", "<f4", "(1, 2, 2)", false, "shape (1, 2, 2) is not 2-D"},
           {"short.npy", "<f4", "(3, 2)", false, "truncated .npy"},
       }) {
    const std::string path = dir.file(c.name);
    write_npy_raw(path, c.descr, c.shape, four_floats, 1, c.fortran);
    std::string msg = input_error_of([&] { open_vector_file(path, VectorFormat::kNpy); });
    EXPECT_CONTAINS(msg, path + ": ");
    EXPECT_CONTAINS(msg, c.reason);
  }
  write_bytes(dir.file("magic.npy"), "not numpy at all, really");
  std::string msg =
      input_error_of([&] { open_vector_file(dir.file("magic.npy"), VectorFormat::kNpy); });
  EXPECT_CONTAINS(msg, dir.file("magic.npy") + ": not a .npy file");
  write_bytes(dir.file("garbled.npy"), std::string("\x93NUMPY\x01\x00\x08\x00{'descr'", 18));
  msg = input_error_of([&] { open_vector_file(dir.file("garbled.npy"), VectorFormat::kNpy); });
  EXPECT_CONTAINS(msg, dir.file("garbled.npy") + ": bad .npy header");
}

}  // namespace
}  // namespace sf::io
