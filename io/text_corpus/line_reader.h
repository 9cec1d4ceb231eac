// Lines of a ByteSource for io/text_corpus, memory bounded by the longest line kept. Not for
// callers, who include io/text_corpus.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "io/text_corpus/byte_source.h"

namespace sf::io::text_detail {

// Splits a ByteSource into lines. A line longer than `max_bytes` is skipped unread (only
// counted), so memory stays bounded by max_bytes.
class LineReader {
 public:
  struct Line {
    std::string_view bytes;  // without the '\n'; empty when too_long
    uint64_t offset = 0;     // of its first byte, from the source's start
    bool too_long = false;
    bool terminated = true;  // false: the data ended without a '\n'
  };

  LineReader(ByteSource& source, uint64_t max_bytes) : source_(source), max_bytes_(max_bytes) {
    buf_.resize(std::min<uint64_t>(max_bytes + 1, 1 << 20) + 1);
  }

  bool next(Line& line) {
    line = Line{};
    line.offset = offset_;
    while (true) {
      const char* nl = static_cast<const char*>(
          std::memchr(buf_.data() + pos_ + scanned_, '\n', len_ - pos_ - scanned_));
      if (nl) {
        const size_t n = static_cast<size_t>(nl - (buf_.data() + pos_));
        if (skipping_) {
          line.too_long = true;
        } else {
          line.bytes = std::string_view(buf_.data() + pos_, n);
        }
        offset_ += n + 1;
        pos_ += n + 1;
        scanned_ = 0;
        skipping_ = false;
        if (!line.too_long && line.bytes.size() > max_bytes_) {
          line.too_long = true;
          line.bytes = {};
        }
        return true;
      }
      scanned_ = len_ - pos_;
      if (skipping_) {  // drop what we have of an over-long line
        offset_ += scanned_;
        pos_ = len_ = scanned_ = 0;
      } else if (scanned_ > max_bytes_) {
        skipping_ = true;
        offset_ += scanned_;
        pos_ = len_ = scanned_ = 0;
      }
      if (eof_) {
        if (len_ == pos_ && !skipping_) return false;
        line.too_long = skipping_;
        line.bytes =
            skipping_ ? std::string_view() : std::string_view(buf_.data() + pos_, len_ - pos_);
        line.terminated = false;
        offset_ += len_ - pos_;
        pos_ = len_ = scanned_ = 0;
        if (skipping_) {
          skipping_ = false;
          return true;
        }
        if (!line.too_long && line.bytes.size() > max_bytes_) {
          line.too_long = true;
          line.bytes = {};
        }
        return true;
      }
      fill();
    }
  }

 private:
  void fill() {
    if (pos_ > 0) {  // keep the partial line at the front
      std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
      len_ -= pos_;
      pos_ = 0;
    }
    if (len_ == buf_.size()) buf_.resize(std::min<uint64_t>(buf_.size() * 2, max_bytes_ + 2));
    if (len_ == buf_.size()) buf_.resize(buf_.size() + (1 << 20));
    const size_t got = source_.read(buf_.data() + len_, buf_.size() - len_);
    if (got == 0) eof_ = true;
    len_ += got;
  }

  ByteSource& source_;
  uint64_t max_bytes_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  size_t scanned_ = 0;  // bytes after pos_ known to hold no '\n'
  uint64_t offset_ = 0;
  bool eof_ = false;
  bool skipping_ = false;
};

}  // namespace sf::io::text_detail
