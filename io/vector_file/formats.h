// The format readers and writers behind io/vector_file.h, one file each (vecs.cc, npy.cc,
// idx.cc, hdf5.cc), and what they share (file_io.cc): not for callers, who include
// io/vector_file.h.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "io/vector_file.h"

namespace sf::io::detail {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the readers and writers assume a little-endian host");

// Bulk reads go through a scratch buffer of about this size when values need converting.
inline constexpr int64_t kChunkBytes = int64_t{8} << 20;

[[noreturn]] void input_error(const std::string& path, const std::string& what);
[[noreturn]] void write_error(const std::string& path, const std::string& what);

std::string errno_text(int err);

void check_range(const std::string& path, int64_t begin, int64_t count, int64_t rows);

// Copies one little-endian value of type Src from unaligned memory and converts it.
template <typename Src, typename Dst>
inline Dst load_as(const uint8_t* p) {
  Src v;
  std::memcpy(&v, p, sizeof(Src));
  return static_cast<Dst>(v);
}

template <typename Src, typename Dst>
void convert_values(const uint8_t* src, int64_t n, Dst* dst) {
  if constexpr (std::is_same_v<Src, Dst>) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(Src));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = load_as<Src, Dst>(src + i * sizeof(Src));
  }
}

// ---------------------------------------------------------------------------------------
// POSIX file descriptor.

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close()'s errno (0 on success); writers must check it.
  int close_checked() {
    if (fd_ < 0) return 0;
    int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

// Opens a regular file for reading; InputError "PATH: cannot open: <strerror>" otherwise.
Fd open_for_read(const std::string& path, int64_t* size);

// Reads up to `bytes` at `offset`, retrying short reads; returns the bytes read (less only
// at end of file). Throws InputError on I/O errors.
int64_t pread_full(int fd, const std::string& path, void* buf, int64_t bytes, int64_t offset);

void write_full(int fd, const std::string& path, const void* buf, int64_t bytes);

Fd create_for_write(const std::string& path);

void finish_write(Fd& fd, const std::string& path);

// ---------------------------------------------------------------------------------------
// The formats, for open_vector_file and read_id_matrix (io/vector_file.h: what they throw).

// Every row of `file` (a format's reader with read_rows into int64_t) as an IdMatrix.
template <typename File>
IdMatrix read_all_ids(File& file) {
  IdMatrix m;
  m.rows = file.rows();
  m.cols = file.dim();
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  file.read_rows(0, m.rows, m.values.data());
  return m;
}

// fvecs, bvecs or ivecs (vecs.cc).
std::unique_ptr<VectorFile> open_vecs_file(const std::string& path, VectorFormat format);
IdMatrix read_ivecs_ids(const std::string& path);
// .npy (npy.cc).
std::unique_ptr<VectorFile> open_npy_file(const std::string& path);
IdMatrix read_npy_ids(const std::string& path);
// IDX (idx.cc).
std::unique_ptr<VectorFile> open_idx_file(const std::string& path);
// HDF5 (hdf5.cc).
std::unique_ptr<VectorFile> open_hdf5_file(const std::string& path, const std::string& dataset);
IdMatrix read_hdf5_ids(const std::string& path, const std::string& dataset);

}  // namespace sf::io::detail
