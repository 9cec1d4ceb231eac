// Packing and unpacking the byte messages that ranks exchange (cluster::Bytes): fixed-size
// values, raw arrays and length-prefixed strings in host byte order, no padding. Both sides
// of a message run the same binary, so no schema or endianness tag is carried; formats that
// outlive a run (files) state their own version.
//
// Only for bulk messages on hot paths, whose layout is the data itself and whose receiver
// reads it in place: inverted lists in a merge (stages/merge.cc), search queries and results
// (stages/shard_search.cc), partition samples and candidate rows (stages/partition.cc).
// Typed messages and checkpoint state go through Boost archives (cluster/archive.h), plain
// records through cluster::exchange.
// No MPI: header-only, usable from every folder that may include cluster/.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "cluster/comm.h"

namespace sf::cluster {

// Appends to a Bytes it does not own. REQUIRES: `out` outlives the writer.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}

  void bytes(const void* data, size_t n) {
    if (n == 0) return;
    // resize + memcpy, not insert: GCC 12 at -O3 takes insert's growth of a small vector for
    // a write past its end (-Wstringop-overflow, a false positive).
    const size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, data, n);
  }
  template <class T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "ByteWriter::value: a plain value type");
    bytes(&v, sizeof(T));
  }
  template <class T>
  void array(const T* data, size_t count) {
    static_assert(std::is_trivially_copyable_v<T>, "ByteWriter::array: plain value types");
    bytes(data, count * sizeof(T));
  }
  // uint32 length, then the characters. Throws std::length_error past 4 GiB.
  void string(const std::string& s) {
    if (s.size() > UINT32_MAX) throw std::length_error("ByteWriter::string: longer than 4 GiB");
    value<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }

 private:
  Bytes& out_;
};

// Reads a Bytes front to back. Every read is bounds-checked: reading past the end throws
// std::runtime_error "<what>: message truncated: ..." with the offset and the sizes, and
// consumes nothing. REQUIRES: `in` outlives the reader (take() points into it).
class ByteReader {
 public:
  ByteReader(const Bytes& in, std::string what) : in_(in), what_(std::move(what)) {}

  // The next n bytes, in place (no alignment is promised: memcpy out of it).
  const char* take(size_t n) {
    if (n > in_.size() - pos_)
      throw std::runtime_error(what_ + ": message truncated: " + std::to_string(n) +
                               " bytes wanted at offset " + std::to_string(pos_) + " of " +
                               std::to_string(in_.size()));
    const char* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  // `count` items of `item_size` bytes each, in place; the product is checked for overflow.
  const char* take(size_t count, size_t item_size) {
    if (item_size != 0 && count > (in_.size() - pos_) / item_size)
      throw std::runtime_error(what_ + ": message truncated: " + std::to_string(count) + " x " +
                               std::to_string(item_size) + " bytes wanted at offset " +
                               std::to_string(pos_) + " of " + std::to_string(in_.size()));
    return take(count * item_size);
  }
  void bytes(void* out, size_t n) {
    const char* p = take(n);
    if (n > 0) std::memcpy(out, p, n);
  }
  template <class T>
  T value() {
    static_assert(std::is_trivially_copyable_v<T>, "ByteReader::value: a plain value type");
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  template <class T>
  void array(T* out, size_t count) {
    static_assert(std::is_trivially_copyable_v<T>, "ByteReader::array: plain value types");
    const char* p = take(count, sizeof(T));
    if (count > 0) std::memcpy(out, p, count * sizeof(T));
  }
  std::string string() {
    const auto n = value<uint32_t>();
    const char* p = take(n);
    return std::string(p, n);
  }

  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  size_t offset() const { return pos_; }

 private:
  const Bytes& in_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace sf::cluster
