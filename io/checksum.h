// Checksums of files on disk (XXH3, 64 bits, from libxxhash): what completion markers record
// to tell a complete output from a truncated or changed one. Not cryptographic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace sf::io {

struct FileDigest {
  int64_t bytes = 0;
  uint64_t xxh3 = 0;
};

// Reads `path` whole. Throws std::runtime_error naming the path when it cannot be read.
FileDigest digest_file(const std::string& path);
// The same, and each buffer read is also given to `also` (another checksum of the same pass).
FileDigest digest_file(const std::string& path,
                       const std::function<void(const char* data, size_t bytes)>& also);
// XXH3-64 of a buffer in memory (the same value digest_file gives for a file of these bytes).
uint64_t xxh3(const void* data, size_t bytes);
// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace sf::io
