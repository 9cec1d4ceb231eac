// Unit tests for IDX (gzipped or not) in io/vector_file, and the real Fashion-MNIST files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/vector_file.h"
#include "tests/test_util.h"
#include "tests/unit/vector_file_fixtures.h"

namespace sf::io {
namespace {

using sf::testing::TempDir;

// ---- IDX --------------------------------------------------------------------------------

TEST(IdxTest, GzipUint8RoundTripAndRandomAccess) {
  TempDir dir;
  const uint32_t rows = 500, h = 4, w = 5;
  const int dim = static_cast<int>(h * w);
  auto pixels = pattern_u8(rows * h * w, 9);
  const std::string path = dir.file("images-idx3-ubyte.gz");
  write_gzip(path, idx_bytes(0x08, {rows, h, w}, std::string(pixels.begin(), pixels.end())));
  auto f = open_vector_file(path, VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), rows);
  ASSERT_EQ(f->dim(), dim);
  std::vector<float> all(pixels.begin(), pixels.end());
  // Forward, backward (rewind), same position again, forward skip, to the last row.
  for (auto [b, c] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 10}, {10, 5}, {300, 20}, {2, 3}, {5, 1}, {5, 1}, {499, 1}, {0, 500}, {250, 0}}) {
    EXPECT_EQ(read_range(*f, b, c), slice(all, dim, b, c)) << b << "+" << c;
  }
}

TEST(IdxTest, UncompressedAndOtherValueTypes) {
  TempDir dir;
  // Uncompressed uint8, 1-D (labels style): dim 1.
  write_bytes(dir.file("labels-idx1-ubyte"),
              idx_bytes(0x08, {4}, std::string("\x01\x09\x00\x07", 4)));
  auto f = open_vector_file(dir.file("labels-idx1-ubyte"), VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), 4);
  ASSERT_EQ(f->dim(), 1);
  EXPECT_EQ(read_all(*f), (std::vector<float>{1, 9, 0, 7}));

  // float32 big-endian (0x0D) and int32 big-endian (0x0C), gzipped.
  const std::vector<float> fv = {1.5f, -2.25f, 1e-3f, 3e7f, 0.0f, -7.0f};
  std::string fpay, ipay;
  for (float x : fv) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    put_be32(&fpay, bits);
  }
  const std::vector<int32_t> iv = {-1, 2, -300000, 4, 5, 16777216};
  for (int32_t x : iv) put_be32(&ipay, static_cast<uint32_t>(x));
  write_gzip(dir.file("f.idx"), idx_bytes(0x0D, {3, 2}, fpay));
  write_gzip(dir.file("i.idx"), idx_bytes(0x0C, {2, 3}, ipay));
  auto ff = open_vector_file(dir.file("f.idx"), VectorFormat::kIdx);
  EXPECT_EQ(ff->rows(), 3);
  EXPECT_EQ(ff->dim(), 2);
  EXPECT_EQ(read_all(*ff), fv);
  auto fi = open_vector_file(dir.file("i.idx"), VectorFormat::kIdx);
  EXPECT_EQ(fi->rows(), 2);
  EXPECT_EQ(fi->dim(), 3);
  EXPECT_EQ(read_all(*fi), std::vector<float>(iv.begin(), iv.end()));
}

TEST(IdxTest, BadMagicAndType) {
  TempDir dir;
  write_gzip(dir.file("bad.gz"), "hello world, not idx");
  std::string msg =
      input_error_of([&] { open_vector_file(dir.file("bad.gz"), VectorFormat::kIdx); });
  EXPECT_CONTAINS(msg, dir.file("bad.gz") + ": not an IDX file");
  write_gzip(dir.file("type.gz"), idx_bytes(0x42, {1, 1}, "x"));
  msg = input_error_of([&] { open_vector_file(dir.file("type.gz"), VectorFormat::kIdx); });
  EXPECT_CONTAINS(msg, dir.file("type.gz") + ": unsupported IDX value type 0x42");
  write_gzip(dir.file("hdr.gz"), std::string("\0\0\x08\x03\0\0", 6));
  msg = input_error_of([&] { open_vector_file(dir.file("hdr.gz"), VectorFormat::kIdx); });
  EXPECT_CONTAINS(msg, dir.file("hdr.gz") + ": truncated IDX header");
}

TEST(IdxTest, TruncatedGzipNamesFileAndRow) {
  TempDir dir;
  const uint32_t rows = 2000, dim = 784;
  auto pixels = pattern_u8(rows * dim, 4);  // pseudo-random: compresses poorly
  const std::string full = dir.file("full.gz");
  write_gzip(full, idx_bytes(0x08, {rows, 28, 28}, std::string(pixels.begin(), pixels.end())));
  const std::string cut = dir.file("cut-idx3-ubyte.gz");
  std::string bytes = read_bytes(full);
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));

  auto f = open_vector_file(cut, VectorFormat::kAuto);  // the header is intact
  ASSERT_EQ(f->rows(), rows);
  std::string msg = input_error_of([&] { read_range(*f, 0, rows); });
  EXPECT_CONTAINS(msg, cut + ": ");
  EXPECT_CONTAINS(msg, "at row ");
  // The named row is near the cut (about half way), not 0 and not the end.
  const size_t at = msg.find("at row ");
  ASSERT_NE(at, std::string::npos);
  const long row = std::stol(msg.substr(at + 7));
  EXPECT_GT(row, static_cast<long>(rows) / 4);
  EXPECT_LT(row, static_cast<long>(rows) * 3 / 4);
  // Skipping forward over the cut also fails naming a row; the early rows stay readable.
  msg = input_error_of([&] { read_range(*f, rows - 1, 1); });
  EXPECT_CONTAINS(msg, "at row ");
  std::vector<float> all(pixels.begin(), pixels.end());
  EXPECT_EQ(read_range(*f, 3, 10), slice(all, dim, 3, 10));
}

// Skips the test (fails it in CI) when the Fashion-MNIST file at `path` is not installed; the
// test then returns.
void require_fashion_mnist(const std::string& path) {
  if (std::filesystem::exists(path)) return;
  if (in_ci()) FAIL() << path << " missing: scripts/install-deps.sh installs dataset-fashion-mnist";
  GTEST_SKIP() << "dataset-fashion-mnist not installed";
}

TEST(IdxTest, FashionMnistTestImages) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  require_fashion_mnist(path);
  if (IsSkipped() || HasFatalFailure()) return;
  auto f = open_vector_file(path, VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), 10000);
  ASSERT_EQ(f->dim(), 784);
  auto all = read_all(*f);
  double sum = 0;
  float lo = 1e9f, hi = -1e9f;
  for (float v : all) {
    ASSERT_EQ(v, std::floor(v));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 255.0f);
  const double mean = sum / static_cast<double>(all.size());
  EXPECT_GT(mean, 60.0);  // Fashion-MNIST's mean pixel is about 73
  EXPECT_LT(mean, 85.0);
  // Every image has ink.
  for (int64_t r = 0; r < 10000; r += 997) {
    EXPECT_GT(*std::max_element(all.begin() + r * 784, all.begin() + (r + 1) * 784), 0.0f) << r;
  }
  // Random access on a fresh reader: last row, row 0 (rewind), 9000 then 5000 (rewind).
  auto g = open_vector_file(path, VectorFormat::kIdx);
  EXPECT_EQ(read_range(*g, 9999, 1), slice(all, 784, 9999, 1));
  EXPECT_EQ(read_range(*g, 0, 1), slice(all, 784, 0, 1));
  EXPECT_EQ(read_range(*g, 9000, 3), slice(all, 784, 9000, 3));
  EXPECT_EQ(read_range(*g, 5000, 2), slice(all, 784, 5000, 2));
  EXPECT_EQ(read_range(*g, 5002, 100), slice(all, 784, 5002, 100));
}

TEST(IdxTest, FashionMnistTestLabels) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  require_fashion_mnist(path);
  if (IsSkipped() || HasFatalFailure()) return;
  auto f = open_vector_file(path, VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), 10000);
  ASSERT_EQ(f->dim(), 1);
  auto labels = read_all(*f);
  std::vector<int> counts(10, 0);
  for (float v : labels) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 9.0f);
    ++counts[static_cast<int>(v)];
  }
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test split is balanced
}

}  // namespace
}  // namespace sf::io
