// Array files: a versioned binary container of named, typed arrays, for checkpoints too big
// for JSON (MinHash signatures, embedded vectors, per-rank verdicts). Layout (this host's
// byte order and number formats: a checkpoint is read back on the same cluster):
//   "SFARRAY1" | u32 kind bytes | kind | u32 kind version
//   per section: u32 name bytes | name | u32 element bytes | u64 count | count x element
//   "SFAREND1" | u64 XXH3-64 of every byte before the trailer
// A reader names the sections it expects, in order. Every mismatch (magic, kind, version,
// section name or element size, a section longer than the rest of the file, the checksum,
// bytes after the trailer) throws std::runtime_error naming the file and what is wrong; a
// count is checked against the file size before anything is allocated. Local (no MPI).
// Publish with io::publish_file (write to the temporary path it passes, then close()).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sf::io {

// The file holds the expected kind in a format version other than the reader's (e.g. a
// checkpoint of an older shardforge): the caller may redo the work instead of failing.
class FormatVersionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ArrayFileWriter {
 public:
  // Creates `path` and writes the header. Throws naming the file.
  ArrayFileWriter(const std::string& path, std::string_view kind, uint32_t kind_version);
  ~ArrayFileWriter();
  ArrayFileWriter(const ArrayFileWriter&) = delete;
  ArrayFileWriter& operator=(const ArrayFileWriter&) = delete;

  template <typename T>
  void write(std::string_view name, const std::vector<T>& values) {
    static_assert(std::is_trivially_copyable_v<T>, "array files hold raw values");
    write_raw(name, sizeof(T), values.size(), values.data());
  }
  // Two sections: `name`.offsets (u64, size + 1) and `name` (the bytes, concatenated).
  void write_strings(std::string_view name, const std::vector<std::string>& values);
  void write_raw(std::string_view name, uint32_t element_bytes, uint64_t count, const void* data);
  // Writes the trailer and flushes. Throws naming the file on any write error.
  void close();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

class ArrayFileReader {
 public:
  // Opens `path` and checks the header against `kind` and `kind_version` (another version:
  // FormatVersionError).
  ArrayFileReader(const std::string& path, std::string_view kind, uint32_t kind_version);
  ~ArrayFileReader();
  ArrayFileReader(const ArrayFileReader&) = delete;
  ArrayFileReader& operator=(const ArrayFileReader&) = delete;

  // The next section, which must be `name` with elements of sizeof(T) bytes.
  template <typename T>
  std::vector<T> read(std::string_view name) {
    static_assert(std::is_trivially_copyable_v<T>, "array files hold raw values");
    std::vector<T> values(static_cast<size_t>(next_section(name, sizeof(T))));
    read_payload(values.data(), values.size() * sizeof(T));
    return values;
  }
  std::vector<std::string> read_strings(std::string_view name);
  // The trailer: checks the checksum and that nothing follows it.
  void close();

 private:
  uint64_t next_section(std::string_view name, uint32_t element_bytes);
  void read_payload(void* data, uint64_t bytes);
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace sf::io
