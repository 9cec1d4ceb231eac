// HDF5: ann-benchmarks files (`train`, `test`, `neighbors`), our outputs and their attributes.
#include <hdf5.h>
#include <unistd.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "io/vector_file/formats.h"

namespace sf::io {

using namespace detail;  // formats.h: what every format shares

namespace {

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
    Hid file_props(H5Pcreate(H5P_FILE_CREATE), H5Pclose);  // the root group: no times either
    if (!file_props.valid() || H5Pset_obj_track_times(file_props.get(), false) < 0)
      write_error(path, "cannot create HDF5 file");
    file = Hid(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, file_props.get(), H5P_DEFAULT), H5Fclose);
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
  // No modification times in the object headers: the same data gives the same bytes (search.h5
  // is compared byte for byte across runs, ranks and threads).
  Hid dataset_props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dataset_props.valid() || H5Pset_obj_track_times(dataset_props.get(), false) < 0)
    write_error(path, "cannot prepare dataset '" + name + "'");
  Hid dataset(H5Dcreate2(file.get(), name.c_str(), file_type, space.get(), link_props.get(),
                         dataset_props.get(), H5P_DEFAULT),
              H5Dclose);
  if (!dataset.valid()) write_error(path, "cannot create dataset '" + name + "'");
  if (rows > 0 && H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    write_error(path, "cannot write dataset '" + name + "'");
  }
  if (!dataset.close() || H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0 || !file.close()) {
    write_error(path, "cannot finish writing dataset '" + name + "'");
  }
}

}  // namespace

std::unique_ptr<VectorFile> detail::open_hdf5_file(const std::string& path,
                                                   const std::string& dataset) {
  return std::make_unique<Hdf5File>(path, dataset);
}

IdMatrix detail::read_hdf5_ids(const std::string& path, const std::string& dataset) {
  IdMatrix m;
  H5Matrix h = h5_open_matrix(path, dataset);
  if (h.type_class != H5T_INTEGER) {
    input_error(path, "dataset '" + dataset + "' is not an integer type (" +
                          h5_class_name(h.type_class) + ")");
  }
  m.rows = h.rows;
  m.cols = h.dim;
  m.values.resize(static_cast<size_t>(m.rows * m.cols));
  h5_read_rows(h, path, dataset, H5T_NATIVE_INT64, 0, m.rows, m.values.data());
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
