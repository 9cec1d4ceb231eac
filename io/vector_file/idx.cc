// IDX (LeCun's MNIST format), usually gzipped: big-endian header and values.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "io/vector_file/formats.h"

namespace sf::io {

using namespace detail;  // formats.h: what every format shares

namespace {

constexpr int kGzBufferBytes = 1 << 20;

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

}  // namespace

std::unique_ptr<VectorFile> detail::open_idx_file(const std::string& path) {
  return std::make_unique<IdxFile>(path);
}

}  // namespace sf::io
