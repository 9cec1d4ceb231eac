// What the vector formats share (formats.h): errors, row ranges and POSIX file I/O.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "io/vector_file/formats.h"

namespace sf::io::detail {

[[noreturn]] void input_error(const std::string& path, const std::string& what) {
  throw InputError(path + ": " + what);
}

[[noreturn]] void write_error(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string errno_text(int err) { return std::strerror(err != 0 ? err : EIO); }

void check_range(const std::string& path, int64_t begin, int64_t count, int64_t rows) {
  if (begin < 0 || count < 0 || begin > rows || count > rows - begin) {
    throw std::out_of_range(path + ": rows [" + std::to_string(begin) + ", " +
                            std::to_string(begin + count) + ") out of range (file has " +
                            std::to_string(rows) + " rows)");
  }
}

// Opens a regular file for reading; InputError "PATH: cannot open: <strerror>" otherwise.
Fd open_for_read(const std::string& path, int64_t* size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) input_error(path, "cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) input_error(path, "cannot open: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) input_error(path, "cannot open: " + errno_text(EISDIR));
  if (size != nullptr) *size = static_cast<int64_t>(st.st_size);
  return fd;
}

// Reads up to `bytes` at `offset`, retrying short reads; returns the bytes read (less only
// at end of file). Throws InputError on I/O errors.
int64_t pread_full(int fd, const std::string& path, void* buf, int64_t bytes, int64_t offset) {
  auto* p = static_cast<uint8_t*>(buf);
  int64_t done = 0;
  while (done < bytes) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(bytes - done, int64_t{1} << 30));
    ssize_t n = ::pread(fd, p + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      input_error(
          path, "read failed at byte " + std::to_string(offset + done) + ": " + errno_text(errno));
    }
    if (n == 0) break;
    done += n;
  }
  return done;
}

void write_full(int fd, const std::string& path, const void* buf, int64_t bytes) {
  const auto* p = static_cast<const uint8_t*>(buf);
  int64_t done = 0;
  while (done < bytes) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(bytes - done, int64_t{1} << 30));
    ssize_t n = ::write(fd, p + done, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      write_error(path, "cannot write: " + errno_text(errno));
    }
    done += n;
  }
}

Fd create_for_write(const std::string& path) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) write_error(path, "cannot create: " + errno_text(errno));
  return fd;
}

void finish_write(Fd& fd, const std::string& path) {
  if (int err = fd.close_checked(); err != 0) write_error(path, "cannot close: " + errno_text(err));
}

}  // namespace sf::io::detail
