#include "io/checksum.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace sf::io {

FileDigest digest_file(const std::string& path) { return digest_file(path, {}); }

FileDigest digest_file(const std::string& path,
                       const std::function<void(const char* data, size_t bytes)>& also) {
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  if (!state || XXH3_64bits_reset(state.get()) != XXH_OK)
    throw std::runtime_error(path + ": cannot start a checksum");
  std::vector<char> buffer(size_t{4} << 20);
  FileDigest d;
  while (true) {
    const ssize_t n = ::read(file.fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buffer.data(), static_cast<size_t>(n));
    if (also) also(buffer.data(), static_cast<size_t>(n));
    d.bytes += n;
  }
  d.xxh3 = XXH3_64bits_digest(state.get());
  return d;
}

uint64_t xxh3(const void* data, size_t bytes) { return XXH3_64bits(data, bytes); }

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace sf::io
