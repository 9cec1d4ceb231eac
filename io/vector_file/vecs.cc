// fvecs / bvecs / ivecs: rows of [int32 dim][dim values].
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/vector_file/formats.h"

namespace sf::io {

using namespace detail;  // formats.h: what every format shares

namespace {

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

}  // namespace

std::unique_ptr<VectorFile> detail::open_vecs_file(const std::string& path, VectorFormat format) {
  return std::make_unique<VecsFile>(path, format);
}

IdMatrix detail::read_ivecs_ids(const std::string& path) {
  VecsFile file(path, VectorFormat::kIvecs);
  return read_all_ids(file);
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

}  // namespace sf::io
