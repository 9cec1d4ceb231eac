// Readers for vector corpora: ann-benchmarks HDF5, fvecs/bvecs/ivecs, .npy, gzipped IDX.
// A corpus is one or more files read as one matrix with global row ids; a rank reads only
// the rows it asks for, in batches. No MPI here.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sf::io {

enum class VectorFormat { kAuto, kHdf5, kFvecs, kBvecs, kIvecs, kNpy, kIdx };

// "auto", "hdf5", "fvecs", "bvecs", "ivecs", "npy", "idx". Throws std::invalid_argument.
VectorFormat parse_vector_format(const std::string& name);
const char* vector_format_name(VectorFormat format);
// From the extension: .h5/.hdf5, .fvecs, .bvecs, .ivecs, .npy, .gz/.idx/-ubyte (IDX).
// Throws InputError naming the file when the extension is unknown.
VectorFormat detect_vector_format(const std::string& path);

// Bad input: the message names the file, and the row where one applies.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One file holding a rows x dim matrix. Opening reads only the header.
// Thread safety: none; one reader per thread.
class VectorFile {
 public:
  virtual ~VectorFile() = default;
  virtual const std::string& path() const = 0;
  virtual int64_t rows() const = 0;
  virtual int dim() const = 0;
  // Reads rows [begin, begin + count) converted to float32 into out[count * dim()].
  // REQUIRES: 0 <= begin, begin + count <= rows(). Throws InputError on short reads.
  virtual void read(int64_t begin, int64_t count, float* out) = 0;
};

// Opens one file. `dataset` is the HDF5 dataset name (ignored by other formats).
// Throws InputError: missing/unreadable file, bad header, truncated file (fvecs/bvecs/ivecs:
// size not a whole number of rows, or a row whose dimension header differs — the row is
// named), HDF5 dataset missing, not rank 2, or not a numeric type.
std::unique_ptr<VectorFile> open_vector_file(const std::string& path, VectorFormat format,
                                             const std::string& dataset = "train");

// Several files forming one corpus: global row g lives in the file whose cumulative row
// range holds it. All files must share one dimension (InputError names both files).
class VectorCorpus {
 public:
  VectorCorpus(const std::vector<std::string>& paths, VectorFormat format,
               const std::string& dataset = "train");
  // From files already open, e.g. make_memory_rows. Same rules as the paths form.
  explicit VectorCorpus(std::vector<std::unique_ptr<VectorFile>> files);
  int64_t rows() const { return total_rows_; }
  int dim() const { return dim_; }
  size_t num_files() const { return files_.size(); }
  const VectorFile& file(size_t i) const { return *files_[i]; }
  // Reads global rows [begin, begin + count) into out[count * dim()], across file
  // boundaries. Every value is checked: NaN or Inf -> InputError naming the file, the row
  // within that file and the global row.
  void read(int64_t begin, int64_t count, float* out);

 private:
  std::vector<std::unique_ptr<VectorFile>> files_;
  std::vector<int64_t> offsets_;  // offsets_[i] = first global row of file i; size n + 1
  int64_t total_rows_ = 0;
  int dim_ = 0;
};

// One rank's part of a rows x dim matrix held in memory (e.g. embeddings handed from one stage
// to the next): rows [begin, begin + data.size() / dim) are readable; reading any other row
// throws std::logic_error (a stage reading outside its rank's rows is a bug). `name` stands
// for the path in messages.
std::unique_ptr<VectorFile> make_memory_rows(std::string name, int64_t rows, int dim,
                                             int64_t begin, std::vector<float> data);
// The same over `held` rows at `data` that the caller owns and keeps alive and unchanged while
// the VectorFile is used (no copy).
std::unique_ptr<VectorFile> make_memory_view(std::string name, int64_t rows, int dim,
                                             int64_t begin, const float* data, int64_t held);

// An integer matrix such as ground-truth neighbours: ivecs, .npy (int32/int64) or an HDF5
// integer dataset (e.g. ann-benchmarks `neighbors`). Read whole: it is small.
struct IdMatrix {
  int64_t rows = 0;
  int cols = 0;
  std::vector<int64_t> values;  // row-major rows x cols
};
IdMatrix read_id_matrix(const std::string& path, VectorFormat format,
                        const std::string& dataset = "neighbors");

// True when the HDF5 file at `path` has a dataset `name`. False for non-HDF5 files.
bool hdf5_has_dataset(const std::string& path, const std::string& name);

// Writers, used by tests, benchmarks and outputs. Each writes `path` whole (no temp name:
// callers that publish results use io/atomic_file.h).
void write_fvecs(const std::string& path, const float* data, int64_t rows, int dim);
void write_bvecs(const std::string& path, const uint8_t* data, int64_t rows, int dim);
void write_ivecs(const std::string& path, const int32_t* data, int64_t rows, int dim);
void write_npy_f32(const std::string& path, const float* data, int64_t rows, int dim);
// A rows x dim float32 .npy written row batch by row batch (a stage's output too large to hold:
// run's embeddings). The header is written first, so `rows` is known up front; close()
// throws std::runtime_error naming the file unless exactly `rows` rows were appended, or on
// any write error. Not thread-safe.
class NpyF32Writer {
 public:
  NpyF32Writer(const std::string& path, int64_t rows, int dim);
  ~NpyF32Writer();
  NpyF32Writer(const NpyF32Writer&) = delete;
  NpyF32Writer& operator=(const NpyF32Writer&) = delete;
  void append(const float* data, int64_t rows);
  void close();

 private:
  struct State;
  std::unique_ptr<State> s_;
};
// Creates or appends a dataset to an HDF5 file (`truncate` starts a new file).
void write_hdf5_f32(const std::string& path, const std::string& dataset, const float* data,
                    int64_t rows, int dim, bool truncate);
void write_hdf5_i64(const std::string& path, const std::string& dataset, const int64_t* data,
                    int64_t rows, int dim, bool truncate);

// Sets an integer attribute on the root group of an existing HDF5 file (e.g. a schema's
// "format_version"), replacing one of the same name.
void write_hdf5_int_attribute(const std::string& path, const std::string& name, int64_t value);
// The attribute, or `fallback` when the file has none of that name.
int64_t read_hdf5_int_attribute(const std::string& path, const std::string& name, int64_t fallback);

}  // namespace sf::io
