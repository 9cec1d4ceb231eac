// What the io/vector_file unit tests share: files written byte by byte (.npy, IDX, gzip,
// raw HDF5), reading helpers, and the check that an InputError names what it should.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "io/vector_file.h"

namespace sf::io {

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
inline std::string as_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// The message of the InputError `fn` throws; fails the test when it throws nothing.
inline std::string input_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected InputError, nothing thrown";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: \"" << (haystack) << "\"\nlacks: \"" << (needle) << "\""

inline std::vector<float> read_all(VectorFile& f) {
  std::vector<float> out(static_cast<size_t>(f.rows()) * f.dim());
  f.read(0, f.rows(), out.data());
  return out;
}

inline std::vector<float> read_range(VectorFile& f, int64_t begin, int64_t count) {
  std::vector<float> out(static_cast<size_t>(count) * f.dim());
  f.read(begin, count, out.data());
  return out;
}

inline std::vector<float> slice(const std::vector<float>& all, int dim, int64_t begin,
                                int64_t count) {
  return std::vector<float>(all.begin() + begin * dim, all.begin() + (begin + count) * dim);
}

// A .npy file written by hand: any descr / fortran_order / shape, v1.0 or v2.0 header.
inline void write_npy_raw(const std::string& path, const std::string& descr,
                          const std::string& shape, const std::string& data, int major = 1,
                          bool fortran = false) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  const size_t prefix = major == 1 ? 10 : 12;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  const uint32_t len = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < prefix - 8; ++i) bytes += static_cast<char>((len >> (8 * i)) & 0xff);
  write_bytes(path, bytes + dict + data);
}

inline void put_be32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) *s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// An IDX file: magic (type, ndims), big-endian dims, then `payload` (already big-endian).
inline std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                             const std::string& payload) {
  std::string s;
  s += '\0';
  s += '\0';
  s += static_cast<char>(type);
  s += static_cast<char>(dims.size());
  for (uint32_t d : dims) put_be32(&s, d);
  return s + payload;
}

inline void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb6");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

inline std::vector<uint8_t> pattern_u8(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

// Minimal HDF5 handle guard for the raw C API calls the tests make.
struct H5Guard {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Guard() {
    if (id >= 0) close(id);
  }
};

// Writes a dataset of any rank/type with the raw C API (for the error cases).
inline void write_h5_raw(const std::string& path, const std::string& name, hid_t type,
                         const std::vector<hsize_t>& dims, const void* data) {
  H5Guard file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  ASSERT_GE(file.id, 0);
  H5Guard space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  ASSERT_GE(space.id, 0);
  H5Guard ds{
      H5Dcreate2(file.id, name.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose};
  ASSERT_GE(ds.id, 0);
  ASSERT_GE(H5Dwrite(ds.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
}

// In CI (CI=true) the install script provides what every test needs: a test that would skip
// there fails instead.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace sf::io
