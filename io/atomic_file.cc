#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace sf::io {
namespace {

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(path + ": cannot reopen to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": fsync failed: " + std::strerror(err));
}

}  // namespace

void publish_file(const std::string& path,
                  const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
    fsync_path(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw std::runtime_error(path + ": rename failed: " + std::strerror(errno));
    // The rename itself is durable only once the directory is synced.
    const std::string parent = std::filesystem::path(path).parent_path().string();
    fsync_path(parent.empty() ? "." : parent);
  } catch (const std::exception& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error(std::string("cannot write ") + path + ": " + e.what());
  }
}

void publish_bytes(const std::string& path, const void* data, size_t bytes) {
  publish_file(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(tmp + ": cannot open: " + std::strerror(errno));
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    out.flush();
    if (!out) throw std::runtime_error(tmp + ": write failed: " + std::strerror(errno));
    out.close();
    if (!out) throw std::runtime_error(tmp + ": write failed: " + std::strerror(errno));
  });
}

void publish_text(const std::string& path, const std::string& text) {
  publish_bytes(path, text.data(), text.size());
}

}  // namespace sf::io
