// The bytes of one text file for io/text_corpus: plain (from an offset), gzip (any number of
// members, damaged members found before reading) or zstd. Not for callers, who include
// io/text_corpus.h.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "io/text_corpus.h"

namespace sf::io::text_detail {

// strerror(errno).
std::string errno_text();

// A file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw InputError(path + ": cannot open: " + errno_text());
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The decompressed (or plain) bytes of one file, from an offset.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to n bytes; 0 at the end of the data (or where it is cut short: see truncated()).
  virtual size_t read(char* buf, size_t n) = 0;
  // Non-empty when the data ended early or was corrupt: what went wrong.
  const std::string& truncated() const { return truncated_; }
  // Where the data is known to be damaged (gzip: the first byte of the first member whose
  // check fails, found before any byte is read), or UINT64_MAX; damage() says what is wrong.
  uint64_t damaged_from() const { return damaged_from_; }
  const std::string& damage() const { return damage_; }
  // How many bytes read() gives in all, up to where the data ends or is found corrupt
  // (compressed files: a whole decompression, once, unless already known; no read() since).
  virtual uint64_t decompressed_bytes() = 0;
  // The file's bytes read so far (compressed: what the decompressor took in), from where the
  // source was opened. For progress: the line reader reads ahead of the line it passes on.
  virtual uint64_t consumed() const = 0;

 protected:
  std::string truncated_;
  uint64_t damaged_from_ = UINT64_MAX;
  std::string damage_;
};

// The bytes of `file` from `offset` (plain files; compressed ones always from the start).
std::unique_ptr<ByteSource> open_source(const TextFile& file, uint64_t offset);

}  // namespace sf::io::text_detail
