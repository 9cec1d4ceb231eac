// Unit tests for io/vector_file: every format through writer + reader, row ranges, corpora
// spanning files, and the errors (each must name the file, and the row where one applies).
#include "io/vector_file.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sf::io {
namespace {

using sf::testing::TempDir;

// ---- helpers ----------------------------------------------------------------------------

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
std::string as_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// The message of the InputError `fn` throws; fails the test when it throws nothing.
std::string input_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected InputError, nothing thrown";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: \"" << (haystack) << "\"\nlacks: \"" << (needle) << "\""

std::vector<float> read_all(VectorFile& f) {
  std::vector<float> out(static_cast<size_t>(f.rows()) * f.dim());
  f.read(0, f.rows(), out.data());
  return out;
}

std::vector<float> read_range(VectorFile& f, int64_t begin, int64_t count) {
  std::vector<float> out(static_cast<size_t>(count) * f.dim());
  f.read(begin, count, out.data());
  return out;
}

std::vector<float> slice(const std::vector<float>& all, int dim, int64_t begin, int64_t count) {
  return std::vector<float>(all.begin() + begin * dim, all.begin() + (begin + count) * dim);
}

// A .npy file written by hand: any descr / fortran_order / shape, v1.0 or v2.0 header.
void write_npy_raw(const std::string& path, const std::string& descr, const std::string& shape,
                   const std::string& data, int major = 1, bool fortran = false) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  const size_t prefix = major == 1 ? 10 : 12;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  const uint32_t len = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < prefix - 8; ++i) bytes += static_cast<char>((len >> (8 * i)) & 0xff);
  write_bytes(path, bytes + dict + data);
}

void put_be32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) *s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// An IDX file: magic (type, ndims), big-endian dims, then `payload` (already big-endian).
std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string s;
  s += '\0';
  s += '\0';
  s += static_cast<char>(type);
  s += static_cast<char>(dims.size());
  for (uint32_t d : dims) put_be32(&s, d);
  return s + payload;
}

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb6");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::vector<uint8_t> pattern_u8(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

// Minimal HDF5 handle guard for the raw C API calls the tests make.
struct H5Guard {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Guard() {
    if (id >= 0) close(id);
  }
};

// Writes a dataset of any rank/type with the raw C API (for the error cases).
void write_h5_raw(const std::string& path, const std::string& name, hid_t type,
                  const std::vector<hsize_t>& dims, const void* data) {
  H5Guard file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  ASSERT_GE(file.id, 0);
  H5Guard space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  ASSERT_GE(space.id, 0);
  H5Guard ds{
      H5Dcreate2(file.id, name.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose};
  ASSERT_GE(ds.id, 0);
  ASSERT_GE(H5Dwrite(ds.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
}

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

// ---- fvecs / bvecs / ivecs --------------------------------------------------------------

TEST(VecsTest, FvecsRoundTripExact) {
  TempDir dir;
  const int64_t rows = 100;
  const int dim = 17;
  auto data = sf::testing::gaussian_mixture(rows, dim, 5, 42);
  const std::string path = dir.file("a.fvecs");
  write_fvecs(path, data.data(), rows, dim);
  EXPECT_EQ(std::filesystem::file_size(path), static_cast<uintmax_t>(rows * (4 + 4 * dim)));
  for (VectorFormat fmt : {VectorFormat::kFvecs, VectorFormat::kAuto}) {
    auto f = open_vector_file(path, fmt);
    EXPECT_EQ(f->path(), path);
    EXPECT_EQ(f->rows(), rows);
    EXPECT_EQ(f->dim(), dim);
    auto got = read_all(*f);
    ASSERT_EQ(got.size(), data.size());
    EXPECT_EQ(std::memcmp(got.data(), data.data(), data.size() * sizeof(float)), 0);
  }
}

TEST(VecsTest, PartialRowRanges) {
  TempDir dir;
  const int dim = 9;
  auto data = sf::testing::gaussian_mixture(100, dim, 3, 7);
  write_fvecs(dir.file("a.fvecs"), data.data(), 100, dim);
  auto f = open_vector_file(dir.file("a.fvecs"), VectorFormat::kFvecs);
  // Out of order on purpose: the reader has no position state.
  for (auto [b, c] : std::vector<std::pair<int64_t, int64_t>>{
           {37, 13}, {0, 1}, {99, 1}, {50, 50}, {1, 98}, {0, 100}, {64, 0}, {100, 0}}) {
    EXPECT_EQ(read_range(*f, b, c), slice(data, dim, b, c)) << b << "+" << c;
  }
}

TEST(VecsTest, LargeReadSpansInternalChunks) {
  // 12 MB of rows: larger than the reader's bulk buffer, so it takes several reads.
  TempDir dir;
  const int64_t rows = 3000;
  const int dim = 1000;
  std::vector<float> data(static_cast<size_t>(rows) * dim);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 100003) * 0.5f;
  write_fvecs(dir.file("big.fvecs"), data.data(), rows, dim);
  auto f = open_vector_file(dir.file("big.fvecs"), VectorFormat::kFvecs);
  EXPECT_EQ(read_all(*f), data);
  EXPECT_EQ(read_range(*f, 1234, 1700), slice(data, dim, 1234, 1700));
}

TEST(VecsTest, BvecsRoundTripExact) {
  TempDir dir;
  const int64_t rows = 300;
  const int dim = 128;
  auto data = pattern_u8(static_cast<size_t>(rows) * dim, 1);
  write_bvecs(dir.file("a.bvecs"), data.data(), rows, dim);
  EXPECT_EQ(std::filesystem::file_size(dir.file("a.bvecs")),
            static_cast<uintmax_t>(rows * (4 + dim)));
  auto f = open_vector_file(dir.file("a.bvecs"), VectorFormat::kAuto);
  ASSERT_EQ(f->rows(), rows);
  ASSERT_EQ(f->dim(), dim);
  auto got = read_range(*f, 10, 200);
  for (int64_t i = 0; i < 200 * dim; ++i) {
    ASSERT_EQ(got[i], static_cast<float>(data[10 * dim + i])) << i;
  }
}

TEST(VecsTest, IvecsRoundTripExact) {
  TempDir dir;
  const int64_t rows = 50;
  const int dim = 10;
  std::vector<int32_t> data(rows * dim);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<int32_t>(i * 7919) * (i % 2 ? -1 : 1);  // |v| < 2^24: exact in float
  }
  write_ivecs(dir.file("a.ivecs"), data.data(), rows, dim);
  auto f = open_vector_file(dir.file("a.ivecs"), VectorFormat::kIvecs);
  ASSERT_EQ(f->rows(), rows);
  ASSERT_EQ(f->dim(), dim);
  auto got = read_all(*f);
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(got[i], static_cast<float>(data[i]));
}

TEST(VecsTest, EmptyFileHasNoRows) {
  TempDir dir;
  write_fvecs(dir.file("e.fvecs"), nullptr, 0, 8);
  auto f = open_vector_file(dir.file("e.fvecs"), VectorFormat::kFvecs);
  EXPECT_EQ(f->rows(), 0);
  f->read(0, 0, nullptr);
}

TEST(VecsTest, TruncatedFileNamesFileAndRow) {
  TempDir dir;
  auto data = sf::testing::gaussian_mixture(10, 8, 2, 1);
  const std::string path = dir.file("t.fvecs");
  write_fvecs(path, data.data(), 10, 8);
  std::filesystem::resize_file(path, 350);  // rows are 36 bytes: row 9 is cut short
  std::string msg = input_error_of([&] { open_vector_file(path, VectorFormat::kFvecs); });
  EXPECT_EQ(msg, path +
                     ": truncated fvecs: 350 bytes is not a whole number of rows of 8 dims "
                     "(row 9 is incomplete)");

  std::vector<uint8_t> bytes(4 * 16);
  write_bvecs(dir.file("t.bvecs"), bytes.data(), 4, 16);
  std::filesystem::resize_file(dir.file("t.bvecs"), 4 * 20 - 1);
  msg = input_error_of([&] { open_vector_file(dir.file("t.bvecs"), VectorFormat::kAuto); });
  EXPECT_CONTAINS(msg, dir.file("t.bvecs") + ": truncated bvecs");
  EXPECT_CONTAINS(msg, "row 3 is incomplete");
}

TEST(VecsTest, TooShortForHeader) {
  TempDir dir;
  write_bytes(dir.file("s.fvecs"), "ab");
  std::string msg =
      input_error_of([&] { open_vector_file(dir.file("s.fvecs"), VectorFormat::kFvecs); });
  EXPECT_CONTAINS(msg, dir.file("s.fvecs"));
  EXPECT_CONTAINS(msg, "truncated fvecs");
}

TEST(VecsTest, NonPositiveDimensionRejected) {
  TempDir dir;
  std::vector<int32_t> words = {0, 0, 0, 0};
  write_bytes(dir.file("z.ivecs"), as_bytes(words));
  std::string msg =
      input_error_of([&] { open_vector_file(dir.file("z.ivecs"), VectorFormat::kIvecs); });
  EXPECT_CONTAINS(msg, dir.file("z.ivecs"));
  EXPECT_CONTAINS(msg, "dimension 0");
  words = {-3, 0, 0, 0};
  write_bytes(dir.file("n.ivecs"), as_bytes(words));
  msg = input_error_of([&] { open_vector_file(dir.file("n.ivecs"), VectorFormat::kIvecs); });
  EXPECT_CONTAINS(msg, "dimension -3");
}

TEST(VecsTest, RowWithWrongHeaderIsNamed) {
  TempDir dir;
  const int dim = 8;
  auto data = sf::testing::gaussian_mixture(10, dim, 2, 3);
  const std::string path = dir.file("h.fvecs");
  write_fvecs(path, data.data(), 10, dim);
  std::string bytes = read_bytes(path);
  const int32_t wrong = 9;
  std::memcpy(&bytes[6 * (4 + 4 * dim)], &wrong, 4);  // row 6's header
  write_bytes(path, bytes);

  auto f = open_vector_file(path, VectorFormat::kFvecs);
  ASSERT_EQ(f->rows(), 10);
  EXPECT_EQ(read_range(*f, 0, 6), slice(data, dim, 0, 6));  // rows before it are fine
  EXPECT_EQ(read_range(*f, 7, 3), slice(data, dim, 7, 3));
  std::string msg = input_error_of([&] { read_range(*f, 2, 8); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "row 6 has dimension 9, expected 8");
}

TEST(VecsTest, MissingFileNamesPathAndReason) {
  TempDir dir;
  for (const std::string name : {"m.fvecs", "m.bvecs", "m.ivecs", "m.npy", "m.h5", "m.gz"}) {
    const std::string path = dir.file(name);
    std::string msg = input_error_of([&] { open_vector_file(path, VectorFormat::kAuto); });
    EXPECT_EQ(msg, path + ": cannot open: No such file or directory") << name;
  }
  std::string msg = input_error_of([&] { open_vector_file(dir.path(), VectorFormat::kFvecs); });
  EXPECT_EQ(msg, dir.path() + ": cannot open: Is a directory");
  msg = input_error_of([&] { VectorCorpus({dir.file("nope.fvecs")}, VectorFormat::kAuto); });
  EXPECT_CONTAINS(msg, dir.file("nope.fvecs") + ": cannot open");
}

// In CI (CI=true) the install script provides what every test needs: a test that would skip
// there fails instead.
bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// What open_vector_file(path) throws in a child process that runs as nobody (uid and gid 65534,
// no supplementary groups) when the test runs as root, as the test's user otherwise: root
// reads any file. "cannot drop root: ..." where the child cannot change its user.
std::string open_error_unprivileged(const std::string& path) {
  int fds[2];
  if (pipe(fds) != 0) return std::string("pipe: ") + std::strerror(errno);
  const pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    close(fds[0]);
    std::string msg;
    struct stat st;
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                           setresuid(65534, 65534, 65534) != 0)) {
      msg = std::string("cannot drop root: ") + std::strerror(errno);
    } else if (stat(path.c_str(), &st) != 0) {
      msg = "cannot reach the file: " + std::string(std::strerror(errno));
    } else {
      try {
        open_vector_file(path, VectorFormat::kFvecs);
        msg = "opened";
      } catch (const std::exception& e) {
        msg = e.what();
      }
    }
    const ssize_t written = write(fds[1], msg.data(), msg.size());
    _exit(written == static_cast<ssize_t>(msg.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return msg;
}

TEST(VecsTest, UnreadableFile) {
  TempDir dir;
  float v = 1.0f;
  write_fvecs(dir.file("p.fvecs"), &v, 1, 1);
  // Only the file's mode refuses: its directory is searchable by anyone.
  namespace fs = std::filesystem;
  fs::permissions(dir.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::permissions(dir.file("p.fvecs"), fs::perms::none);
  const std::string msg = open_error_unprivileged(dir.file("p.fvecs"));
  if (msg.rfind("cannot drop root", 0) == 0) {
    if (in_ci()) FAIL() << msg;
    GTEST_SKIP() << msg;
  }
  EXPECT_EQ(msg, dir.file("p.fvecs") + ": cannot open: Permission denied");
}

TEST(VecsTest, OutOfRangeReadThrows) {
  TempDir dir;
  auto data = sf::testing::gaussian_mixture(5, 4, 1, 1);
  write_fvecs(dir.file("r.fvecs"), data.data(), 5, 4);
  auto f = open_vector_file(dir.file("r.fvecs"), VectorFormat::kFvecs);
  std::vector<float> out(100);
  EXPECT_THROW(f->read(3, 3, out.data()), std::out_of_range);
  EXPECT_THROW(f->read(-1, 1, out.data()), std::out_of_range);
  EXPECT_THROW(f->read(6, 0, out.data()), std::out_of_range);
}

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

TEST(IdxTest, FashionMnistTestImages) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(path)) {
    if (in_ci())
      FAIL() << path << " missing: scripts/install-deps.sh installs dataset-fashion-mnist";
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
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
  if (!std::filesystem::exists(path)) {
    if (in_ci())
      FAIL() << path << " missing: scripts/install-deps.sh installs dataset-fashion-mnist";
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
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

}  // namespace
}  // namespace sf::io

namespace sf::io {
namespace {

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
