#include "io/array_file.h"

#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sf::io {
namespace {

constexpr char kMagic[8] = {'S', 'F', 'A', 'R', 'R', 'A', 'Y', '1'};
constexpr char kTrailer[8] = {'S', 'F', 'A', 'R', 'E', 'N', 'D', '1'};
constexpr uint32_t kMaxName = 4096;

using XxhState = std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)>;

XxhState new_state(const std::string& path) {
  XxhState state(XXH3_createState(), &XXH3_freeState);
  if (!state || XXH3_64bits_reset(state.get()) != XXH_OK)
    throw std::runtime_error(path + ": cannot start a checksum");
  return state;
}

}  // namespace

// ---- writer ---------------------------------------------------------------------------------

struct ArrayFileWriter::State {
  std::string path;
  std::ofstream out;
  XxhState hash{nullptr, &XXH3_freeState};
  bool closed = false;

  void put(const void* data, size_t bytes) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    XXH3_64bits_update(hash.get(), data, bytes);
  }
  void put_name(std::string_view name) {
    const auto n = static_cast<uint32_t>(name.size());
    put(&n, sizeof(n));
    put(name.data(), name.size());
  }
  void check() const {
    if (!out) throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  }
};

ArrayFileWriter::ArrayFileWriter(const std::string& path, std::string_view kind,
                                 uint32_t kind_version)
    : s_(std::make_unique<State>()) {
  s_->path = path;
  s_->out.open(path, std::ios::binary | std::ios::trunc);
  if (!s_->out) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
  s_->hash = new_state(path);
  s_->put(kMagic, sizeof(kMagic));
  s_->put_name(kind);
  s_->put(&kind_version, sizeof(kind_version));
  s_->check();
}

ArrayFileWriter::~ArrayFileWriter() = default;

void ArrayFileWriter::write_raw(std::string_view name, uint32_t element_bytes, uint64_t count,
                                const void* data) {
  s_->put_name(name);
  s_->put(&element_bytes, sizeof(element_bytes));
  s_->put(&count, sizeof(count));
  if (count > 0) s_->put(data, static_cast<size_t>(count * element_bytes));
  s_->check();
}

void ArrayFileWriter::write_strings(std::string_view name, const std::vector<std::string>& values) {
  std::vector<uint64_t> offsets{0};
  offsets.reserve(values.size() + 1);
  for (const std::string& v : values) offsets.push_back(offsets.back() + v.size());
  write(std::string(name) + ".offsets", offsets);
  s_->put_name(name);
  const uint32_t one = 1;
  s_->put(&one, sizeof(one));
  s_->put(&offsets.back(), sizeof(uint64_t));
  for (const std::string& v : values) s_->put(v.data(), v.size());
  s_->check();
}

void ArrayFileWriter::close() {
  if (s_->closed) return;
  const uint64_t digest = XXH3_64bits_digest(s_->hash.get());
  s_->out.write(kTrailer, sizeof(kTrailer));
  s_->out.write(reinterpret_cast<const char*>(&digest), sizeof(digest));
  s_->out.flush();
  s_->check();
  s_->out.close();
  s_->check();
  s_->closed = true;
}

// ---- reader ---------------------------------------------------------------------------------

struct ArrayFileReader::State {
  std::string path;
  std::ifstream in;
  XxhState hash{nullptr, &XXH3_freeState};
  uint64_t left = 0;  // bytes not read yet

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path + ": " + what);
  }
  void get(void* data, uint64_t bytes, const char* what) {
    if (bytes > left)
      fail(std::string("truncated: ") + what + " needs " + std::to_string(bytes) +
           " bytes, the file has " + std::to_string(left) + " left");
    in.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
    if (!in) fail(std::string("read failed in ") + what + ": " + std::strerror(errno));
    XXH3_64bits_update(hash.get(), data, static_cast<size_t>(bytes));
    left -= bytes;
  }
  std::string get_name(const char* what) {
    uint32_t n = 0;
    get(&n, sizeof(n), what);
    if (n > kMaxName) fail(std::string("corrupt: ") + what + " of " + std::to_string(n) + " bytes");
    std::string name(n, '\0');
    get(name.data(), n, what);
    return name;
  }
};

ArrayFileReader::ArrayFileReader(const std::string& path, std::string_view kind,
                                 uint32_t kind_version)
    : s_(std::make_unique<State>()) {
  s_->path = path;
  s_->in.open(path, std::ios::binary | std::ios::ate);
  if (!s_->in) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  s_->left = static_cast<uint64_t>(s_->in.tellg());
  s_->in.seekg(0);
  s_->hash = new_state(path);
  char magic[sizeof(kMagic)];
  if (s_->left < sizeof(magic)) s_->fail("not a shardforge array file (too short)");
  s_->get(magic, sizeof(magic), "the header");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    s_->fail("not a shardforge array file (no SFARRAY1 header)");
  const std::string found = s_->get_name("the kind");
  uint32_t version = 0;
  s_->get(&version, sizeof(version), "the header");
  if (found != kind) s_->fail("holds '" + found + "', expected '" + std::string(kind) + "'");
  if (version != kind_version)
    throw FormatVersionError(path + ": '" + found + "' format version " + std::to_string(version) +
                             ", written by " + (version < kind_version ? "an older" : "a newer") +
                             " shardforge; this build reads version " +
                             std::to_string(kind_version));
}

ArrayFileReader::~ArrayFileReader() = default;

uint64_t ArrayFileReader::next_section(std::string_view name, uint32_t element_bytes) {
  const std::string what = "section '" + std::string(name) + "'";
  const std::string found = s_->get_name(what.c_str());
  if (found != name) s_->fail("expected " + what + ", found '" + found + "'");
  uint32_t size = 0;
  uint64_t count = 0;
  s_->get(&size, sizeof(size), what.c_str());
  s_->get(&count, sizeof(count), what.c_str());
  if (size != element_bytes)
    s_->fail(what + " has elements of " + std::to_string(size) + " bytes, expected " +
             std::to_string(element_bytes));
  if (count > s_->left / element_bytes)
    s_->fail("truncated or corrupt: " + what + " claims " + std::to_string(count) +
             " elements of " + std::to_string(element_bytes) + " bytes, the file has " +
             std::to_string(s_->left) + " bytes left");
  return count;
}

void ArrayFileReader::read_payload(void* data, uint64_t bytes) {
  if (bytes > 0) s_->get(data, bytes, "a section's values");
}

std::vector<std::string> ArrayFileReader::read_strings(std::string_view name) {
  const std::vector<uint64_t> offsets = read<uint64_t>(std::string(name) + ".offsets");
  const std::string bytes_section = std::string(name);
  const uint64_t total = next_section(bytes_section, 1);
  if (offsets.empty() || offsets.back() != total)
    s_->fail("corrupt: section '" + bytes_section + "' does not match its offsets");
  std::string bytes(static_cast<size_t>(total), '\0');
  read_payload(bytes.data(), total);
  std::vector<std::string> values;
  values.reserve(offsets.size() - 1);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    if (offsets[i] > offsets[i + 1])
      s_->fail("corrupt: section '" + bytes_section + ".offsets' decreases");
    values.emplace_back(bytes, static_cast<size_t>(offsets[i]),
                        static_cast<size_t>(offsets[i + 1] - offsets[i]));
  }
  return values;
}

void ArrayFileReader::close() {
  const uint64_t digest = XXH3_64bits_digest(s_->hash.get());
  char trailer[sizeof(kTrailer)];
  uint64_t recorded = 0;
  if (s_->left < sizeof(trailer) + sizeof(recorded)) s_->fail("truncated: no trailer");
  s_->in.read(trailer, sizeof(trailer));
  s_->in.read(reinterpret_cast<char*>(&recorded), sizeof(recorded));
  if (!s_->in) s_->fail("read failed in the trailer");
  s_->left -= sizeof(trailer) + sizeof(recorded);
  if (std::memcmp(trailer, kTrailer, sizeof(kTrailer)) != 0)
    s_->fail("corrupt: no SFAREND1 trailer where the sections end");
  if (recorded != digest) s_->fail("corrupt: checksum differs from the recorded one");
  if (s_->left != 0) s_->fail(std::to_string(s_->left) + " unexpected bytes after the trailer");
}

}  // namespace sf::io
