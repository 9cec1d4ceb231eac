#include "io/vector_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace sf::io {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the readers and writers assume a little-endian host");

// Bulk reads go through a scratch buffer of about this size when values need converting.
constexpr int64_t kChunkBytes = int64_t{8} << 20;
constexpr int kGzBufferBytes = 1 << 20;
constexpr int64_t kMaxNpyHeaderBytes = int64_t{1} << 20;

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

// ---------------------------------------------------------------------------------------
// fvecs / bvecs / ivecs: rows of [int32 dim][dim values].

class VecsFile final : public VectorFile {
 public:
  VecsFile(const std::string& path, VectorFormat format)
      : path_(path), format_(format), elem_bytes_(format == VectorFormat::kBvecs ? 1 : 4) {
    int64_t size = 0;
    fd_ = open_for_read(path_, &size);
    if (size == 0) return;  // an empty file: 0 rows, dimension unknown (0)
    const char* name = vector_format_name(format_);
    if (size < 4) {
      input_error(path_, std::string("truncated ") + name + ": " + std::to_string(size) +
                             " bytes is too short for a dimension header");
    }
    int32_t dim = 0;
    if (pread_full(fd_.get(), path_, &dim, 4, 0) != 4) {
      input_error(path_, std::string("truncated ") + name + ": cannot read row 0's header");
    }
    if (dim <= 0) {
      input_error(path_, std::string("bad ") + name + " header: row 0 has dimension " +
                             std::to_string(dim));
    }
    dim_ = dim;
    row_bytes_ = 4 + int64_t{dim_} * elem_bytes_;
    if (size % row_bytes_ != 0) {
      input_error(path_, std::string("truncated ") + name + ": " + std::to_string(size) +
                             " bytes is not a whole number of rows of " + std::to_string(dim_) +
                             " dims (row " + std::to_string(size / row_bytes_) + " is incomplete)");
    }
    rows_ = size / row_bytes_;
  }

  const std::string& path() const override { return path_; }
  int64_t rows() const override { return rows_; }
  int dim() const override { return dim_; }

  void read(int64_t begin, int64_t count, float* out) override { read_rows(begin, count, out); }

  // Reads rows [begin, begin + count) into out[count * dim()], converting to Dst.
  template <typename Dst>
  void read_rows(int64_t begin, int64_t count, Dst* out) {
    check_range(path_, begin, count, rows_);
    if (count == 0) return;
    const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / row_bytes_);
    buffer_.resize(static_cast<size_t>(std::min(count, chunk_rows) * row_bytes_));
    for (int64_t done = 0; done < count;) {
      const int64_t n = std::min(count - done, chunk_rows);
      const int64_t row0 = begin + done;
      const int64_t want = n * row_bytes_;
      const int64_t got = pread_full(fd_.get(), path_, buffer_.data(), want, row0 * row_bytes_);
      if (got != want) {
        input_error(path_, "short read: row " + std::to_string(row0 + got / row_bytes_) +
                               " is missing (file shrank after opening?)");
      }
      const uint8_t* row = buffer_.data();
      Dst* dst = out + done * dim_;
      for (int64_t r = 0; r < n; ++r, row += row_bytes_, dst += dim_) {
        int32_t header;
        std::memcpy(&header, row, 4);
        if (header != dim_) {
          input_error(path_, "row " + std::to_string(row0 + r) + " has dimension " +
                                 std::to_string(header) + ", expected " + std::to_string(dim_) +
                                 " (from row 0)");
        }
        convert_row(row + 4, dst);
      }
      done += n;
    }
  }

 private:
  template <typename Dst>
  void convert_row(const uint8_t* src, Dst* dst) const {
    switch (format_) {
      case VectorFormat::kBvecs:
        convert_values<uint8_t>(src, dim_, dst);
        break;
      case VectorFormat::kIvecs:
        convert_values<int32_t>(src, dim_, dst);
        break;
      default:
        convert_values<float>(src, dim_, dst);
        break;
    }
  }

  std::string path_;
  VectorFormat format_;
  int elem_bytes_;
  Fd fd_;
  int64_t rows_ = 0;
  int dim_ = 0;
  int64_t row_bytes_ = 0;
  std::vector<uint8_t> buffer_;
};

// ---------------------------------------------------------------------------------------
// .npy (v1.0, v2.0, v3.0), C order, 2-D.

enum class NpyType { kF32, kF64, kU8, kI32, kI64 };

int npy_type_bytes(NpyType t) {
  switch (t) {
    case NpyType::kU8:
      return 1;
    case NpyType::kF32:
    case NpyType::kI32:
      return 4;
    default:
      return 8;
  }
}

bool parse_npy_descr(std::string descr, NpyType* type) {
  // '=' is native order, which is little-endian here; '|' means "not applicable" (1 byte).
  if (!descr.empty() && descr[0] == '=') descr[0] = '<';
  static const std::pair<const char*, NpyType> kTypes[] = {
      {"<f4", NpyType::kF32}, {"<f8", NpyType::kF64}, {"|u1", NpyType::kU8},
      {"<u1", NpyType::kU8},  {"<i4", NpyType::kI32}, {"<i8", NpyType::kI64}};
  for (const auto& [name, t] : kTypes) {
    if (descr == name) {
      *type = t;
      return true;
    }
  }
  return false;
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  int64_t data_offset = 0;
};

// A minimal parser for the Python literal numpy writes.
class NpyDictParser {
 public:
  NpyDictParser(const std::string& path, const std::string& text) : path_(path), s_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') fail("'descr' is not a simple dtype string");
        h.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') break;
      fail("expected ',' or '}' at offset " + std::to_string(pos_));
    }
    if (!have_descr || !have_order || !have_shape) {
      fail("header lacks 'descr', 'fortran_order' or 'shape'");
    }
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    input_error(path_, "bad .npy header: " + why);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string at offset " + std::to_string(pos_));
    const size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("'fortran_order' is not True or False");
  }
  std::vector<int64_t> parse_tuple() {
    std::vector<int64_t> out;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return out;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("bad 'shape' tuple");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("'shape' value overflows");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (peek() == 'L') ++pos_;  // Python 2 longs
      out.push_back(v);
      skip_space();
      if (peek() == ',')
        ++pos_;
      else if (peek() != ')')
        fail("bad 'shape' tuple");
    }
  }

  const std::string& path_;
  const std::string& s_;
  size_t pos_ = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

NpyHeader read_npy_header(int fd, const std::string& path, int64_t file_size) {
  uint8_t pre[12];
  const int64_t got = pread_full(fd, path, pre, sizeof(pre), 0);
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (got < 10 || std::memcmp(pre, kMagic, 6) != 0)
    input_error(path, "not a .npy file (bad magic)");
  const int major = pre[6];
  int64_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = pre[8] | (pre[9] << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (got < 12) input_error(path, "truncated .npy header");
    header_len = int64_t{pre[8]} | (int64_t{pre[9]} << 8) | (int64_t{pre[10]} << 16) |
                 (int64_t{pre[11]} << 24);
    prefix = 12;
  } else {
    input_error(path,
                "unsupported .npy version " + std::to_string(major) + "." + std::to_string(pre[7]));
  }
  if (header_len > kMaxNpyHeaderBytes || prefix + header_len > file_size) {
    input_error(path, "truncated .npy header (" + std::to_string(header_len) + " bytes declared)");
  }
  std::string text(static_cast<size_t>(header_len), '\0');
  if (pread_full(fd, path, text.data(), header_len, prefix) != header_len) {
    input_error(path, "truncated .npy header");
  }
  NpyHeader h = NpyDictParser(path, text).parse();
  h.data_offset = prefix + header_len;
  return h;
}

class NpyFile final : public VectorFile {
 public:
  // `integer_only`: accept only '<i4'/'<i8' (id matrices); otherwise any supported dtype.
  NpyFile(const std::string& path, bool integer_only) : path_(path) {
    int64_t size = 0;
    fd_ = open_for_read(path_, &size);
    NpyHeader h = read_npy_header(fd_.get(), path_, size);
    const bool known = parse_npy_descr(h.descr, &type_);
    if (integer_only) {
      if (!known || (type_ != NpyType::kI32 && type_ != NpyType::kI64)) {
        input_error(path_, "dtype '" + h.descr + "' is not an integer id type ('<i4' or '<i8')");
      }
    } else if (!known) {
      input_error(path_,
                  "dtype '" + h.descr + "' is not supported ('<f4', '<f8', '|u1', '<i4' or '<i8')");
    }
    if (h.fortran_order) input_error(path_, "fortran_order arrays are not supported");
    if (h.shape.size() != 2) {
      input_error(path_, "shape " + shape_text(h.shape) + " is not 2-D (rows, dim)");
    }
    if (h.shape[1] < 1 || h.shape[1] > std::numeric_limits<int>::max()) {
      input_error(path_, "shape " + shape_text(h.shape) + " has an unusable dimension");
    }
    rows_ = h.shape[0];
    dim_ = static_cast<int>(h.shape[1]);
    elem_bytes_ = npy_type_bytes(type_);
    data_offset_ = h.data_offset;
    row_bytes_ = int64_t{dim_} * elem_bytes_;
    const int64_t available = size - data_offset_;
    if (rows_ > available / row_bytes_) {
      input_error(path_, "truncated .npy: shape " + shape_text(h.shape) + " needs " +
                             std::to_string(rows_) + " rows but the data holds " +
                             std::to_string(available / row_bytes_) + " (row " +
                             std::to_string(available / row_bytes_) + " is incomplete)");
    }
  }

  const std::string& path() const override { return path_; }
  int64_t rows() const override { return rows_; }
  int dim() const override { return dim_; }
  NpyType type() const { return type_; }

  void read(int64_t begin, int64_t count, float* out) override { read_rows(begin, count, out); }

  template <typename Dst>
  void read_rows(int64_t begin, int64_t count, Dst* out) {
    check_range(path_, begin, count, rows_);
    if (count == 0) return;
    if (is_native<Dst>()) {  // no conversion: read straight into `out`
      read_bytes(begin, count, out);
      return;
    }
    const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / row_bytes_);
    buffer_.resize(static_cast<size_t>(std::min(count, chunk_rows) * row_bytes_));
    for (int64_t done = 0; done < count;) {
      const int64_t n = std::min(count - done, chunk_rows);
      read_bytes(begin + done, n, buffer_.data());
      const int64_t values = n * dim_;
      Dst* dst = out + done * dim_;
      switch (type_) {
        case NpyType::kF32:
          convert_values<float>(buffer_.data(), values, dst);
          break;
        case NpyType::kF64:
          convert_values<double>(buffer_.data(), values, dst);
          break;
        case NpyType::kU8:
          convert_values<uint8_t>(buffer_.data(), values, dst);
          break;
        case NpyType::kI32:
          convert_values<int32_t>(buffer_.data(), values, dst);
          break;
        case NpyType::kI64:
          convert_values<int64_t>(buffer_.data(), values, dst);
          break;
      }
      done += n;
    }
  }

 private:
  template <typename Dst>
  bool is_native() const {
    return (std::is_same_v<Dst, float> && type_ == NpyType::kF32) ||
           (std::is_same_v<Dst, int64_t> && type_ == NpyType::kI64);
  }

  void read_bytes(int64_t row0, int64_t n, void* dst) {
    const int64_t want = n * row_bytes_;
    const int64_t got = pread_full(fd_.get(), path_, dst, want, data_offset_ + row0 * row_bytes_);
    if (got != want) {
      input_error(path_, "short read: row " + std::to_string(row0 + got / row_bytes_) +
                             " is missing (file shrank after opening?)");
    }
  }

  std::string path_;
  Fd fd_;
  NpyType type_ = NpyType::kF32;
  int elem_bytes_ = 4;
  int64_t rows_ = 0;
  int dim_ = 0;
  int64_t data_offset_ = 0;
  int64_t row_bytes_ = 0;
  std::vector<uint8_t> buffer_;
};

// ---------------------------------------------------------------------------------------
// IDX (LeCun's MNIST format), usually gzipped: big-endian header and values.

class GzFile {
 public:
  GzFile() = default;
  explicit GzFile(gzFile f) : f_(f) {}
  ~GzFile() {
    if (f_ != nullptr) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  GzFile& operator=(GzFile&& other) noexcept {
    if (this != &other) {
      if (f_ != nullptr) gzclose(f_);
      f_ = std::exchange(other.f_, nullptr);
    }
    return *this;
  }
  gzFile get() const { return f_; }

 private:
  gzFile f_ = nullptr;
};

template <typename T>
T byteswap_value(const uint8_t* p) {
  uint8_t b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) b[i] = p[sizeof(T) - 1 - i];
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

template <typename T>
void convert_big_endian(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = static_cast<float>(byteswap_value<T>(src + i * sizeof(T)));
}

class IdxFile final : public VectorFile {
 public:
  explicit IdxFile(const std::string& path) : path_(path) {
    open_for_read(path_, nullptr);  // a clear "cannot open" error before zlib's
    reopen();
    uint8_t magic[4];
    if (read_some(magic, 4) != 4) input_error(path_, "truncated IDX header");
    if (magic[0] != 0 || magic[1] != 0 || magic[3] == 0) {
      input_error(path_, "not an IDX file (bad magic)");
    }
    type_ = magic[2];
    switch (type_) {
      case 0x08:
      case 0x09:
        elem_bytes_ = 1;
        break;
      case 0x0B:
        elem_bytes_ = 2;
        break;
      case 0x0C:
      case 0x0D:
        elem_bytes_ = 4;
        break;
      case 0x0E:
        elem_bytes_ = 8;
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02X", type_);
        input_error(path_, std::string("unsupported IDX value type ") + hex);
      }
    }
    const int ndims = magic[3];
    std::vector<uint8_t> dims(static_cast<size_t>(ndims) * 4);
    if (read_some(dims.data(), static_cast<int64_t>(dims.size())) !=
        static_cast<int64_t>(dims.size())) {
      input_error(path_, "truncated IDX header");
    }
    rows_ = byteswap_value<uint32_t>(dims.data());
    int64_t dim = 1;
    for (int i = 1; i < ndims; ++i) {
      dim *= byteswap_value<uint32_t>(dims.data() + 4 * i);
      if (dim > std::numeric_limits<int>::max()) input_error(path_, "IDX row is too large");
    }
    if (dim < 1) input_error(path_, "IDX rows have 0 values");
    dim_ = static_cast<int>(dim);
    data_offset_ = 4 + int64_t{ndims} * 4;
    row_bytes_ = dim * elem_bytes_;
    pos_ = 0;
  }

  const std::string& path() const override { return path_; }
  int64_t rows() const override { return rows_; }
  int dim() const override { return dim_; }

  void read(int64_t begin, int64_t count, float* out) override {
    check_range(path_, begin, count, rows_);
    if (count == 0) return;
    if (pos_ < 0 || begin < pos_) rewind();
    try {
      skip_rows(begin - pos_);
      const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / row_bytes_);
      buffer_.resize(static_cast<size_t>(std::min(count, chunk_rows) * row_bytes_));
      for (int64_t done = 0; done < count;) {
        const int64_t n = std::min(count - done, chunk_rows);
        const int64_t got = read_some(buffer_.data(), n * row_bytes_);
        if (got != n * row_bytes_) truncated(begin + done + got / row_bytes_);
        convert(buffer_.data(), n * dim_, out + done * dim_);
        pos_ += n;
        done += n;
      }
    } catch (...) {
      pos_ = -1;  // position unknown: the next read starts over
      throw;
    }
  }

 private:
  void reopen() {
    gz_ = GzFile(gzopen(path_.c_str(), "rb"));
    if (gz_.get() == nullptr) input_error(path_, "cannot open: " + errno_text(errno));
    gzbuffer(gz_.get(), kGzBufferBytes);
  }

  void rewind() {
    // gzrewind fails after a data error; reopening always works.
    if (gzrewind(gz_.get()) != 0) reopen();
    pos_ = -1;
    std::vector<uint8_t> header(static_cast<size_t>(data_offset_));
    if (read_some(header.data(), data_offset_) != data_offset_) {
      input_error(path_, "truncated IDX header");
    }
    pos_ = 0;
  }

  // Reads forward from pos_ by `n` rows, decompressing and discarding.
  void skip_rows(int64_t n) {
    if (n <= 0) return;
    const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / row_bytes_);
    buffer_.resize(static_cast<size_t>(std::min(n, chunk_rows) * row_bytes_));
    while (n > 0) {
      const int64_t k = std::min(n, chunk_rows);
      const int64_t got = read_some(buffer_.data(), k * row_bytes_);
      if (got != k * row_bytes_) truncated(pos_ + got / row_bytes_);
      pos_ += k;
      n -= k;
    }
  }

  [[noreturn]] void truncated(int64_t row) {
    int err = Z_OK;
    const char* msg = gzerror(gz_.get(), &err);
    std::string why = (err != Z_OK && msg != nullptr && *msg != '\0') ? msg : "end of file";
    input_error(path_, "truncated or corrupt IDX data at row " + std::to_string(row) + " of " +
                           std::to_string(rows_) + " (" + why + ")");
  }

  // Reads up to `bytes`; fewer only at end of data or on a zlib error.
  int64_t read_some(void* buf, int64_t bytes) {
    auto* p = static_cast<uint8_t*>(buf);
    int64_t done = 0;
    while (done < bytes) {
      const unsigned want =
          static_cast<unsigned>(std::min<int64_t>(bytes - done, int64_t{1} << 30));
      const int n = gzread(gz_.get(), p + done, want);
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  void convert(const uint8_t* src, int64_t n, float* dst) const {
    switch (type_) {
      case 0x08:
        convert_values<uint8_t>(src, n, dst);
        break;
      case 0x09:
        convert_values<int8_t>(src, n, dst);
        break;
      case 0x0B:
        convert_big_endian<int16_t>(src, n, dst);
        break;
      case 0x0C:
        convert_big_endian<int32_t>(src, n, dst);
        break;
      case 0x0D:
        convert_big_endian<float>(src, n, dst);
        break;
      default:
        convert_big_endian<double>(src, n, dst);
        break;
    }
  }

  std::string path_;
  GzFile gz_;
  int type_ = 0x08;
  int elem_bytes_ = 1;
  int64_t rows_ = 0;
  int dim_ = 0;
  int64_t data_offset_ = 0;
  int64_t row_bytes_ = 0;
  int64_t pos_ = -1;  // next row the stream will yield; -1 when unknown
  std::vector<uint8_t> buffer_;
};

// ---------------------------------------------------------------------------------------
// HDF5.

// Owns one hid_t and its matching close function.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; false when the close failed (writers must know their data reached disk).
  bool close() {
    if (id_ < 0) return true;
    const herr_t rc = closer_(std::exchange(id_, H5I_INVALID_HID));
    return rc >= 0;
  }

 private:
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

const char* h5_class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_TIME:
      return "time";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

Hid h5_open_file_readonly(const std::string& path) {
  open_for_read(path, nullptr);  // "cannot open: <strerror>" for missing/unreadable files
  silence_hdf5();
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) input_error(path, "cannot open as HDF5 (not an HDF5 file, or corrupt)");
  return file;
}

// An open rank-2 dataset with its shape and type class.
struct H5Matrix {
  Hid file;
  Hid dataset;
  int64_t rows = 0;
  int dim = 0;
  H5T_class_t type_class = H5T_NO_CLASS;
};

H5Matrix h5_open_matrix(const std::string& path, const std::string& name) {
  H5Matrix m;
  m.file = h5_open_file_readonly(path);
  m.dataset = Hid(H5Dopen2(m.file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!m.dataset.valid()) input_error(path, "dataset '" + name + "' not found");
  Hid type(H5Dget_type(m.dataset.get()), H5Tclose);
  Hid space(H5Dget_space(m.dataset.get()), H5Sclose);
  if (!type.valid() || !space.valid()) input_error(path, "cannot inspect dataset '" + name + "'");
  m.type_class = H5Tget_class(type.get());
  if (m.type_class != H5T_FLOAT && m.type_class != H5T_INTEGER) {
    input_error(path,
                "dataset '" + name + "' is not numeric (" + h5_class_name(m.type_class) + " type)");
  }
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank != 2) {
    input_error(path, "dataset '" + name + "' has rank " + std::to_string(rank) + ", expected 2");
  }
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_dims(space.get(), dims, nullptr) != 2) {
    input_error(path, "cannot read the shape of dataset '" + name + "'");
  }
  if (dims[1] < 1 || dims[1] > static_cast<hsize_t>(std::numeric_limits<int>::max()) ||
      dims[0] > static_cast<hsize_t>(std::numeric_limits<int64_t>::max())) {
    input_error(path, "dataset '" + name + "' has an unusable shape (" + std::to_string(dims[0]) +
                          ", " + std::to_string(dims[1]) + ")");
  }
  m.rows = static_cast<int64_t>(dims[0]);
  m.dim = static_cast<int>(dims[1]);
  return m;
}

// Reads rows [begin, begin + count) of `m` as `mem_type` into out.
void h5_read_rows(const H5Matrix& m, const std::string& path, const std::string& name,
                  hid_t mem_type, int64_t begin, int64_t count, void* out) {
  if (count == 0) return;
  silence_hdf5();
  Hid file_space(H5Dget_space(m.dataset.get()), H5Sclose);
  const hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
  const hsize_t extent[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(m.dim)};
  Hid mem_space(H5Screate_simple(2, extent, nullptr), H5Sclose);
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr) < 0 ||
      H5Dread(m.dataset.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0) {
    input_error(path, "cannot read rows [" + std::to_string(begin) + ", " +
                          std::to_string(begin + count) + ") of dataset '" + name + "' (row " +
                          std::to_string(begin) + " onwards)");
  }
}

class Hdf5File final : public VectorFile {
 public:
  Hdf5File(const std::string& path, const std::string& dataset)
      : path_(path), dataset_(dataset), m_(h5_open_matrix(path, dataset)) {}

  const std::string& path() const override { return path_; }
  int64_t rows() const override { return m_.rows; }
  int dim() const override { return m_.dim; }

  void read(int64_t begin, int64_t count, float* out) override {
    check_range(path_, begin, count, m_.rows);
    h5_read_rows(m_, path_, dataset_, H5T_NATIVE_FLOAT, begin, count, out);
  }

 private:
  std::string path_;
  std::string dataset_;
  H5Matrix m_;
};

// Creates (or replaces) `name` in the file and writes rows x dim values of `mem_type`.
void h5_write(const std::string& path, const std::string& name, hid_t file_type, hid_t mem_type,
              const void* data, int64_t rows, int dim, bool truncate) {
  if (rows < 0 || dim < 1) {
    throw std::invalid_argument(path + ": bad shape (" + std::to_string(rows) + ", " +
                                std::to_string(dim) + ")");
  }
  silence_hdf5();
  Hid file;
  if (truncate || ::access(path.c_str(), F_OK) != 0) {
    file = Hid(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.valid()) write_error(path, "cannot create HDF5 file");
  } else {
    file = Hid(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    if (!file.valid())
      write_error(path, "cannot open HDF5 file for writing (not HDF5, or open elsewhere)");
    // An existing dataset of the same name is replaced.
    if (H5Lexists(file.get(), name.c_str(), H5P_DEFAULT) > 0 &&
        H5Ldelete(file.get(), name.c_str(), H5P_DEFAULT) < 0) {
      write_error(path, "cannot replace dataset '" + name + "'");
    }
  }
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(dim)};
  Hid space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  Hid link_props(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!space.valid() || !link_props.valid() ||
      H5Pset_create_intermediate_group(link_props.get(), 1) < 0) {
    write_error(path, "cannot prepare dataset '" + name + "'");
  }
  Hid dataset(H5Dcreate2(file.get(), name.c_str(), file_type, space.get(), link_props.get(),
                         H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
  if (!dataset.valid()) write_error(path, "cannot create dataset '" + name + "'");
  if (rows > 0 && H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    write_error(path, "cannot write dataset '" + name + "'");
  }
  if (!dataset.close() || H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0 || !file.close()) {
    write_error(path, "cannot finish writing dataset '" + name + "'");
  }
}

// ---------------------------------------------------------------------------------------
// Writers for the row formats.

template <typename T>
void write_vecs(const std::string& path, const T* data, int64_t rows, int dim) {
  if (rows < 0 || dim < 1) {
    throw std::invalid_argument(path + ": bad shape (" + std::to_string(rows) + ", " +
                                std::to_string(dim) + ")");
  }
  Fd fd = create_for_write(path);
  const int64_t row_bytes = 4 + int64_t{dim} * static_cast<int64_t>(sizeof(T));
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / row_bytes);
  std::vector<uint8_t> buf(
      static_cast<size_t>(std::min(std::max<int64_t>(rows, 1), chunk_rows) * row_bytes));
  const int32_t header = dim;
  for (int64_t done = 0; done < rows;) {
    const int64_t n = std::min(rows - done, chunk_rows);
    uint8_t* p = buf.data();
    for (int64_t r = 0; r < n; ++r, p += row_bytes) {
      std::memcpy(p, &header, 4);
      std::memcpy(p + 4, data + (done + r) * dim, static_cast<size_t>(dim) * sizeof(T));
    }
    write_full(fd.get(), path, buf.data(), n * row_bytes);
    done += n;
  }
  finish_write(fd, path);
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

VectorFormat resolve(const std::string& path, VectorFormat format) {
  return format == VectorFormat::kAuto ? detect_vector_format(path) : format;
}

}  // namespace

// ---------------------------------------------------------------------------------------

VectorFormat parse_vector_format(const std::string& name) {
  static const std::pair<const char*, VectorFormat> kNames[] = {
      {"auto", VectorFormat::kAuto},   {"hdf5", VectorFormat::kHdf5},
      {"fvecs", VectorFormat::kFvecs}, {"bvecs", VectorFormat::kBvecs},
      {"ivecs", VectorFormat::kIvecs}, {"npy", VectorFormat::kNpy},
      {"idx", VectorFormat::kIdx}};
  for (const auto& [n, f] : kNames) {
    if (name == n) return f;
  }
  throw std::invalid_argument("unknown vector format '" + name +
                              "' (expected auto, hdf5, fvecs, bvecs, ivecs, npy or idx)");
}

const char* vector_format_name(VectorFormat format) {
  switch (format) {
    case VectorFormat::kAuto:
      return "auto";
    case VectorFormat::kHdf5:
      return "hdf5";
    case VectorFormat::kFvecs:
      return "fvecs";
    case VectorFormat::kBvecs:
      return "bvecs";
    case VectorFormat::kIvecs:
      return "ivecs";
    case VectorFormat::kNpy:
      return "npy";
    case VectorFormat::kIdx:
      return "idx";
  }
  return "unknown";
}

VectorFormat detect_vector_format(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string name = lowercase(slash == std::string::npos ? path : path.substr(slash + 1));
  if (ends_with(name, ".h5") || ends_with(name, ".hdf5")) return VectorFormat::kHdf5;
  if (ends_with(name, ".fvecs")) return VectorFormat::kFvecs;
  if (ends_with(name, ".bvecs")) return VectorFormat::kBvecs;
  if (ends_with(name, ".ivecs")) return VectorFormat::kIvecs;
  if (ends_with(name, ".npy")) return VectorFormat::kNpy;
  if (ends_with(name, ".gz") || ends_with(name, ".idx") || ends_with(name, "-ubyte")) {
    return VectorFormat::kIdx;
  }
  throw InputError(path +
                   ": cannot tell the vector format from the file name (expected .h5, .hdf5, "
                   ".fvecs, .bvecs, .ivecs, .npy, .gz, .idx or -ubyte); name the format");
}

std::unique_ptr<VectorFile> open_vector_file(const std::string& path, VectorFormat format,
                                             const std::string& dataset) {
  // Opening a FIFO (or a device) for reading may block forever: refuse anything but a
  // regular file before any reader opens it. Missing files and directories get the
  // readers' own messages.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
    input_error(path, std::string("not a regular file (") +
                          (S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device") +
                          "): cannot read vectors from it");
  const VectorFormat resolved = resolve(path, format);
  switch (resolved) {
    case VectorFormat::kHdf5:
      return std::make_unique<Hdf5File>(path, dataset);
    case VectorFormat::kFvecs:
    case VectorFormat::kBvecs:
    case VectorFormat::kIvecs:
      return std::make_unique<VecsFile>(path, resolved);
    case VectorFormat::kNpy:
      return std::make_unique<NpyFile>(path, /*integer_only=*/false);
    case VectorFormat::kIdx:
      return std::make_unique<IdxFile>(path);
    case VectorFormat::kAuto:
      break;
  }
  throw std::logic_error("open_vector_file: unresolved format");
}

namespace {

std::vector<std::unique_ptr<VectorFile>> open_all(const std::vector<std::string>& paths,
                                                  VectorFormat format, const std::string& dataset) {
  if (paths.empty()) throw InputError("vector corpus: no input files");
  std::vector<std::unique_ptr<VectorFile>> files;
  for (const auto& path : paths) files.push_back(open_vector_file(path, format, dataset));
  return files;
}

class MemoryRows : public VectorFile {
 public:
  // Owns `data`, or (view) reads `held` rows at `view` owned by the caller.
  MemoryRows(std::string name, int64_t rows, int dim, int64_t begin, std::vector<float> data,
             const float* view = nullptr, int64_t held = 0)
      : name_(std::move(name)), rows_(rows), dim_(dim), begin_(begin), data_(std::move(data)) {
    if (dim < 1 || begin < 0 || data_.size() % static_cast<size_t>(dim) != 0)
      throw std::logic_error(name_ + ": in-memory rows do not fit the matrix");
    rows_at_ = view != nullptr ? view : data_.data();
    held_ = view != nullptr ? held : static_cast<int64_t>(data_.size() / dim_);
    if (held_ < 0 || begin + held_ > rows)
      throw std::logic_error(name_ + ": in-memory rows do not fit the matrix");
  }
  const std::string& path() const override { return name_; }
  int64_t rows() const override { return rows_; }
  int dim() const override { return dim_; }
  void read(int64_t begin, int64_t count, float* out) override {
    if (begin < begin_ || begin + count > begin_ + held_)
      throw std::logic_error(name_ + ": rows [" + std::to_string(begin) + ", " +
                             std::to_string(begin + count) + ") are not on this rank (it holds [" +
                             std::to_string(begin_) + ", " + std::to_string(begin_ + held_) + "))");
    std::copy_n(rows_at_ + (begin - begin_) * dim_, count * dim_, out);
  }

 private:
  std::string name_;
  int64_t rows_;
  int dim_;
  int64_t begin_;
  std::vector<float> data_;
  const float* rows_at_ = nullptr;
  int64_t held_ = 0;
};

}  // namespace

std::unique_ptr<VectorFile> make_memory_rows(std::string name, int64_t rows, int dim,
                                             int64_t begin, std::vector<float> data) {
  return std::make_unique<MemoryRows>(std::move(name), rows, dim, begin, std::move(data));
}

std::unique_ptr<VectorFile> make_memory_view(std::string name, int64_t rows, int dim,
                                             int64_t begin, const float* data, int64_t held) {
  return std::make_unique<MemoryRows>(std::move(name), rows, dim, begin, std::vector<float>{},
                                      data, held);
}

VectorCorpus::VectorCorpus(const std::vector<std::string>& paths, VectorFormat format,
                           const std::string& dataset)
    : VectorCorpus(open_all(paths, format, dataset)) {}

VectorCorpus::VectorCorpus(std::vector<std::unique_ptr<VectorFile>> files) {
  if (files.empty()) throw InputError("vector corpus: no input files");
  files_ = std::move(files);
  offsets_.push_back(0);
  size_t dim_source = 0;
  for (size_t i = 0; i < files_.size(); ++i) {
    const VectorFile& f = *files_[i];
    const std::string& path = f.path();
    // An empty fvecs/bvecs/ivecs file has no header and so no dimension (0): skip it.
    if (f.dim() != 0) {
      if (dim_ == 0) {
        dim_ = f.dim();
        dim_source = i;
      } else if (f.dim() != dim_) {
        throw InputError(path + ": dimension " + std::to_string(f.dim()) + " differs from " +
                         files_[dim_source]->path() + " (" + std::to_string(dim_) + ")");
      }
    }
    total_rows_ += f.rows();
    offsets_.push_back(total_rows_);
  }
}

void VectorCorpus::read(int64_t begin, int64_t count, float* out) {
  check_range("vector corpus", begin, count, total_rows_);
  int64_t done = 0;
  while (done < count) {
    const int64_t g = begin + done;
    // The last file whose first row is <= g; empty files share offsets and are skipped.
    const size_t i = static_cast<size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), g) -
                                         offsets_.begin()) -
                     1;
    VectorFile& f = *files_[i];
    const int64_t local = g - offsets_[i];
    const int64_t n = std::min(count - done, offsets_[i + 1] - g);
    float* dst = out + done * dim_;
    f.read(local, n, dst);
    const int64_t values = n * dim_;
    bool ok = true;
    for (int64_t k = 0; k < values; ++k) ok &= std::isfinite(dst[k]);
    if (!ok) {
      for (int64_t k = 0; k < values; ++k) {
        if (!std::isfinite(dst[k])) {
          const int64_t r = k / dim_;
          throw InputError(f.path() + ": row " + std::to_string(local + r) + " (global row " +
                           std::to_string(g + r) + ") has a non-finite value at column " +
                           std::to_string(k % dim_));
        }
      }
    }
    done += n;
  }
}

IdMatrix read_id_matrix(const std::string& path, VectorFormat format, const std::string& dataset) {
  IdMatrix m;
  const VectorFormat f = resolve(path, format);
  if (f == VectorFormat::kIvecs) {
    VecsFile file(path, f);
    m.rows = file.rows();
    m.cols = file.dim();
    m.values.resize(static_cast<size_t>(m.rows * m.cols));
    file.read_rows(0, m.rows, m.values.data());
  } else if (f == VectorFormat::kNpy) {
    NpyFile file(path, /*integer_only=*/true);
    m.rows = file.rows();
    m.cols = file.dim();
    m.values.resize(static_cast<size_t>(m.rows * m.cols));
    file.read_rows(0, m.rows, m.values.data());
  } else if (f == VectorFormat::kHdf5) {
    H5Matrix h = h5_open_matrix(path, dataset);
    if (h.type_class != H5T_INTEGER) {
      input_error(path, "dataset '" + dataset + "' is not an integer type (" +
                            h5_class_name(h.type_class) + ")");
    }
    m.rows = h.rows;
    m.cols = h.dim;
    m.values.resize(static_cast<size_t>(m.rows * m.cols));
    h5_read_rows(h, path, dataset, H5T_NATIVE_INT64, 0, m.rows, m.values.data());
  } else {
    input_error(path, std::string("a ") + vector_format_name(f) +
                          " file cannot hold an id matrix (use ivecs, .npy int32/int64 or an "
                          "HDF5 integer dataset)");
  }
  return m;
}

bool hdf5_has_dataset(const std::string& path, const std::string& name) {
  if (::access(path.c_str(), R_OK) != 0) return false;
  silence_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) return false;
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) return false;
  Hid dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  return dataset.valid();
}

void write_fvecs(const std::string& path, const float* data, int64_t rows, int dim) {
  write_vecs(path, data, rows, dim);
}

void write_bvecs(const std::string& path, const uint8_t* data, int64_t rows, int dim) {
  write_vecs(path, data, rows, dim);
}

void write_ivecs(const std::string& path, const int32_t* data, int64_t rows, int dim) {
  write_vecs(path, data, rows, dim);
}

void write_npy_f32(const std::string& path, const float* data, int64_t rows, int dim) {
  if (rows < 0 || dim < 1) {
    throw std::invalid_argument(path + ": bad shape (" + std::to_string(rows) + ", " +
                                std::to_string(dim) + ")");
  }
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) +
                     ", " + std::to_string(dim) + "), }";
  // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string header = "\x93NUMPY";
  header.push_back('\x01');
  header.push_back('\x00');
  header.push_back(static_cast<char>(dict.size() & 0xff));
  header.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  header += dict;
  Fd fd = create_for_write(path);
  write_full(fd.get(), path, header.data(), static_cast<int64_t>(header.size()));
  write_full(fd.get(), path, data, rows * dim * static_cast<int64_t>(sizeof(float)));
  finish_write(fd, path);
}

void write_hdf5_f32(const std::string& path, const std::string& dataset, const float* data,
                    int64_t rows, int dim, bool truncate) {
  h5_write(path, dataset, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, rows, dim, truncate);
}

void write_hdf5_i64(const std::string& path, const std::string& dataset, const int64_t* data,
                    int64_t rows, int dim, bool truncate) {
  h5_write(path, dataset, H5T_STD_I64LE, H5T_NATIVE_INT64, data, rows, dim, truncate);
}

void write_hdf5_int_attribute(const std::string& path, const std::string& name, int64_t value) {
  silence_hdf5();
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) write_error(path, "cannot open HDF5 file to set attribute '" + name + "'");
  if (H5Aexists(file.get(), name.c_str()) > 0 && H5Adelete(file.get(), name.c_str()) < 0)
    write_error(path, "cannot replace attribute '" + name + "'");
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(H5Acreate2(file.get(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!space.valid() || !attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    write_error(path, "cannot write attribute '" + name + "'");
  if (!attr.close() || H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0 || !file.close())
    write_error(path, "cannot finish writing attribute '" + name + "'");
}

int64_t read_hdf5_int_attribute(const std::string& path, const std::string& name, int64_t fallback) {
  silence_hdf5();
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) throw InputError(path + ": cannot open HDF5 file");
  if (H5Aexists(file.get(), name.c_str()) <= 0) return fallback;
  Hid attr(H5Aopen(file.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  int64_t value = fallback;
  if (!attr.valid() || H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw InputError(path + ": cannot read attribute '" + name + "'");
  return value;
}

}  // namespace sf::io
