// .npy (v1.0, v2.0, v3.0), C order, 2-D.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "io/vector_file/formats.h"

namespace sf::io {

using namespace detail;  // formats.h: what every format shares

namespace {

constexpr int64_t kMaxNpyHeaderBytes = int64_t{1} << 20;

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

}  // namespace

std::unique_ptr<VectorFile> detail::open_npy_file(const std::string& path) {
  return std::make_unique<NpyFile>(path, /*integer_only=*/false);
}

IdMatrix detail::read_npy_ids(const std::string& path) {
  NpyFile file(path, /*integer_only=*/true);
  return read_all_ids(file);
}

namespace {

std::string npy_f32_header(const std::string& path, int64_t rows, int dim) {
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
  return header;
}

}  // namespace

void write_npy_f32(const std::string& path, const float* data, int64_t rows, int dim) {
  const std::string header = npy_f32_header(path, rows, dim);
  Fd fd = create_for_write(path);
  write_full(fd.get(), path, header.data(), static_cast<int64_t>(header.size()));
  write_full(fd.get(), path, data, rows * dim * static_cast<int64_t>(sizeof(float)));
  finish_write(fd, path);
}

struct NpyF32Writer::State {
  std::string path;
  int64_t rows = 0, written = 0;
  int dim = 0;
  Fd fd;
};

NpyF32Writer::NpyF32Writer(const std::string& path, int64_t rows, int dim)
    : s_(std::make_unique<State>()) {
  const std::string header = npy_f32_header(path, rows, dim);
  s_->path = path;
  s_->rows = rows;
  s_->dim = dim;
  s_->fd = create_for_write(path);
  write_full(s_->fd.get(), path, header.data(), static_cast<int64_t>(header.size()));
}

NpyF32Writer::~NpyF32Writer() = default;

void NpyF32Writer::append(const float* data, int64_t rows) {
  if (rows < 0 || s_->written + rows > s_->rows)
    throw std::runtime_error(s_->path + ": more rows than the " + std::to_string(s_->rows) +
                             " of its header");
  write_full(s_->fd.get(), s_->path, data, rows * s_->dim * static_cast<int64_t>(sizeof(float)));
  s_->written += rows;
}

void NpyF32Writer::close() {
  if (s_->written != s_->rows)
    throw std::runtime_error(s_->path + ": " + std::to_string(s_->written) + " rows written, its header says " +
                             std::to_string(s_->rows));
  finish_write(s_->fd, s_->path);
}

}  // namespace sf::io
