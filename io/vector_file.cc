#include "io/vector_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "io/vector_file/formats.h"

namespace sf::io {

using namespace detail;  // formats.h: what every format shares

namespace {

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
      return detail::open_hdf5_file(path, dataset);
    case VectorFormat::kFvecs:
    case VectorFormat::kBvecs:
    case VectorFormat::kIvecs:
      return detail::open_vecs_file(path, resolved);
    case VectorFormat::kNpy:
      return detail::open_npy_file(path);
    case VectorFormat::kIdx:
      return detail::open_idx_file(path);
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
    m = detail::read_ivecs_ids(path);
  } else if (f == VectorFormat::kNpy) {
    m = detail::read_npy_ids(path);
  } else if (f == VectorFormat::kHdf5) {
    m = detail::read_hdf5_ids(path, dataset);
  } else {
    input_error(path, std::string("a ") + vector_format_name(f) +
                          " file cannot hold an id matrix (use ivecs, .npy int32/int64 or an "
                          "HDF5 integer dataset)");
  }
  return m;
}

}  // namespace sf::io
