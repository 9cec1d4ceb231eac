// Unit tests for fvecs / bvecs / ivecs in io/vector_file: round trips, row ranges, and the
// errors (each must name the file, and the row where one applies).
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace
}  // namespace sf::io
