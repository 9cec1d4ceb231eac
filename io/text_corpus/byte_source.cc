#include "io/text_corpus/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace sf::io::text_detail {
namespace {

// Reads `n` bytes at most; 0 at the end. Throws InputError on a read error.
size_t read_some(int fd, const std::string& path, char* buf, size_t n) {
  while (true) {
    const ssize_t got = ::read(fd, buf, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) throw InputError(path + ": read failed: " + errno_text());
  }
}

class PlainSource : public ByteSource {
 public:
  PlainSource(const std::string& path, uint64_t offset) : path_(path), fd_(path) {
    if (offset > 0 && ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
      throw InputError(path + ": seek failed: " + errno_text());
  }
  size_t read(char* buf, size_t n) override {
    const size_t got = read_some(fd_.get(), path_, buf, n);
    consumed_ += got;
    return got;
  }
  uint64_t consumed() const override { return consumed_; }
  uint64_t decompressed_bytes() override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) throw InputError(path_ + ": stat failed: " + errno_text());
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  Fd fd_;
  uint64_t consumed_ = 0;
};

constexpr size_t kInChunk = 1 << 18;

// An inflate stream for gzip (and zlib) data, ended on destruction.
class Inflater {
 public:
  explicit Inflater(const std::string& path) {
    std::memset(&zs_, 0, sizeof(zs_));
    if (inflateInit2(&zs_, 15 + 32) != Z_OK) throw InputError(path + ": zlib init failed");
  }
  ~Inflater() { inflateEnd(&zs_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& get() { return zs_; }

 private:
  z_stream zs_;
};

struct GzipDamage {
  uint64_t out_begin = UINT64_MAX;  // the damaged member's first decompressed byte
  std::string what;
  uint64_t out_total = 0;  // bytes decompressed until the end or the damage
};

// Inflates a whole gzip file, output discarded, to find its first damaged member: a CRC or
// length in a member's trailer that does not match its data (zlib's Z_DATA_ERROR at the
// trailer), or data that is not deflate. Its data is passed on before the trailer is checked,
// so the reader must know before it reads. A file cut short is not damage (the reader reports
// it as truncated).
GzipDamage find_gzip_damage(const std::string& path) {
  Fd fd(path);
  Inflater inflater(path);
  z_stream& zs = inflater.get();
  std::vector<char> in(kInChunk), out(kInChunk);
  uint64_t read_total = 0;  // bytes read from the file
  uint64_t out_total = 0;   // bytes decompressed
  uint64_t member_in = 0;   // the current member's first byte in the file
  uint64_t member_out = 0;  // and in the decompressed data
  while (true) {
    if (zs.avail_in == 0) {
      const size_t got = read_some(fd.get(), path, in.data(), in.size());
      if (got == 0) return {UINT64_MAX, {}, out_total};
      zs.next_in = reinterpret_cast<Bytef*>(in.data());
      zs.avail_in = static_cast<uInt>(got);
      read_total += got;
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out_total += out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      inflateReset(&zs);
      member_in = read_total - zs.avail_in;
      member_out = out_total;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const uint64_t at = read_total - zs.avail_in;
      return {member_out,
              "gzip member at byte " + std::to_string(member_in) +
                  " is damaged (zlib: " + (zs.msg ? zs.msg : "inflate failed") + ", at byte " +
                  std::to_string(at) + "); its records and all after it are left out",
              out_total};
    }
  }
}

// gzip (and zlib) streams, any number of concatenated members.
class GzipSource : public ByteSource {
 public:
  explicit GzipSource(const std::string& path) : path_(path), fd_(path), in_(kInChunk) {
    std::memset(&zs_, 0, sizeof(zs_));
    if (inflateInit2(&zs_, 15 + 32) != Z_OK) throw InputError(path + ": zlib init failed");
    GzipDamage damage = find_gzip_damage(path);
    damaged_from_ = damage.out_begin;
    damage_ = std::move(damage.what);
    decompressed_ = damage.out_total;
  }
  ~GzipSource() override { inflateEnd(&zs_); }
  uint64_t decompressed_bytes() override { return decompressed_; }
  uint64_t consumed() const override { return read_total_ - zs_.avail_in; }

  size_t read(char* buf, size_t n) override {
    if (done_) return 0;
    zs_.next_out = reinterpret_cast<Bytef*>(buf);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out == n) {
      if (zs_.avail_in == 0) {
        const size_t got = read_some(fd_.get(), path_, in_.data(), in_.size());
        if (got == 0) {
          done_ = true;
          if (in_member_) truncated_ = "gzip data ends inside a member (file cut short)";
          break;
        }
        zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
        zs_.avail_in = static_cast<uInt>(got);
        read_total_ += got;
      }
      in_member_ = true;
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        inflateReset(&zs_);  // another member may follow
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        done_ = true;
        truncated_ = std::string("corrupt gzip data: ") + (zs_.msg ? zs_.msg : "inflate failed");
        break;
      }
    }
    return n - zs_.avail_out;
  }

 private:
  std::string path_;
  Fd fd_;
  std::vector<char> in_;
  z_stream zs_;
  bool in_member_ = false;
  bool done_ = false;
  uint64_t decompressed_ = 0;
  uint64_t read_total_ = 0;  // bytes read from the file
};

// Decompresses a whole zstd file, output discarded: its bytes up to the end or the first error.
uint64_t count_zstd_bytes(const std::string& path) {
  Fd fd(path);
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw InputError(path + ": zstd init failed");
  std::vector<char> in(ZSTD_DStreamInSize()), out(ZSTD_DStreamOutSize());
  uint64_t total = 0;
  while (true) {
    const size_t got = read_some(fd.get(), path, in.data(), in.size());
    if (got == 0) return total;
    ZSTD_inBuffer input{in.data(), got, 0};
    while (input.pos < input.size) {
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      const size_t rc = ZSTD_decompressStream(ctx.get(), &output, &input);
      if (ZSTD_isError(rc)) return total;
      total += output.pos;
    }
  }
}

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : path_(path), fd_(path), in_(ZSTD_DStreamInSize()), ctx_(ZSTD_createDCtx()) {
    if (!ctx_) throw InputError(path + ": zstd init failed");
  }
  ~ZstdSource() override { ZSTD_freeDCtx(ctx_); }
  uint64_t decompressed_bytes() override {
    if (decompressed_ == UINT64_MAX) decompressed_ = count_zstd_bytes(path_);
    return decompressed_;
  }
  uint64_t consumed() const override { return read_total_ - (input_.size - input_.pos); }

  size_t read(char* buf, size_t n) override {
    if (done_) return 0;
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (input_.pos == input_.size) {
        const size_t got = read_some(fd_.get(), path_, in_.data(), in_.size());
        if (got == 0) {
          done_ = true;
          if (pending_ != 0) truncated_ = "zstd data ends inside a frame (file cut short)";
          break;
        }
        input_ = ZSTD_inBuffer{in_.data(), got, 0};
        read_total_ += got;
      }
      const size_t rc = ZSTD_decompressStream(ctx_, &out, &input_);
      if (ZSTD_isError(rc)) {
        done_ = true;
        truncated_ = std::string("corrupt zstd data: ") + ZSTD_getErrorName(rc);
        break;
      }
      pending_ = rc;
    }
    return out.pos;
  }

 private:
  std::string path_;
  Fd fd_;
  std::vector<char> in_;
  ZSTD_DCtx* ctx_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  size_t pending_ = 0;  // 0 when the last frame is complete
  bool done_ = false;
  uint64_t decompressed_ = UINT64_MAX;  // not counted yet
  uint64_t read_total_ = 0;             // bytes read from the file
};

}  // namespace

std::string errno_text() { return std::strerror(errno); }

std::unique_ptr<ByteSource> open_source(const TextFile& file, uint64_t offset) {
  switch (file.compression) {
    case Compression::kGzip:
      return std::make_unique<GzipSource>(file.path);
    case Compression::kZstd:
      return std::make_unique<ZstdSource>(file.path);
    case Compression::kNone:
      break;
  }
  return std::make_unique<PlainSource>(file.path, offset);
}

}  // namespace sf::io::text_detail
