#include "io/text_corpus.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "io/jsonl_fields.h"

namespace sf::io {
namespace {

std::string errno_text() { return std::strerror(errno); }

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

// Reads `n` bytes at most; 0 at the end. Throws InputError on a read error.
size_t read_some(int fd, const std::string& path, char* buf, size_t n) {
  while (true) {
    const ssize_t got = ::read(fd, buf, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) throw InputError(path + ": read failed: " + errno_text());
  }
}

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

 protected:
  std::string truncated_;
  uint64_t damaged_from_ = UINT64_MAX;
  std::string damage_;
};

class PlainSource : public ByteSource {
 public:
  PlainSource(const std::string& path, uint64_t offset) : path_(path), fd_(path) {
    if (offset > 0 && ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
      throw InputError(path + ": seek failed: " + errno_text());
  }
  size_t read(char* buf, size_t n) override { return read_some(fd_.get(), path_, buf, n); }

 private:
  std::string path_;
  Fd fd_;
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
      if (got == 0) return {};
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
      return {member_out, "gzip member at byte " + std::to_string(member_in) +
                              " is damaged (zlib: " + (zs.msg ? zs.msg : "inflate failed") +
                              ", at byte " + std::to_string(at) +
                              "); its records and all after it are left out"};
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
  }
  ~GzipSource() override { inflateEnd(&zs_); }

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
};

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path)
      : path_(path), fd_(path), in_(ZSTD_DStreamInSize()), ctx_(ZSTD_createDCtx()) {
    if (!ctx_) throw InputError(path + ": zstd init failed");
  }
  ~ZstdSource() override { ZSTD_freeDCtx(ctx_); }

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
};

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

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
  return true;
}

// `s` as a JSON string literal.
void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

// Parses one JSONL line into `record`; returns false (and fills `bad`) when it is bad.
// `fields` holds the requests: [0] text, [1] id, [2] keep field (when options name one).
bool parse_jsonl(std::string_view line, const TextReadOptions& options, JsonField* fields,
                 std::string& id, TextRecord& record, BadRecord& bad) {
  if (!valid_utf8(line)) {
    bad.kind = BadKind::kInvalidUtf8;
    bad.detail = "the line is not valid UTF-8";
    return false;
  }
  const int count = options.keep_field.empty() ? 2 : 3;
  const JsonLineStatus status = parse_jsonl_fields(line, fields, count);
  if (status != JsonLineStatus::kObject) {
    bad.kind = BadKind::kMalformedJson;
    bad.detail = is_blank(line)                       ? "blank line"
                 : status == JsonLineStatus::kInvalid ? "not valid JSON"
                                                      : "not a JSON object";
    return false;
  }
  const JsonField& t = fields[0];
  if (!t.found || t.type != JsonField::kString) {
    bad.kind = BadKind::kMissingText;
    bad.detail = !t.found ? "no field '" + options.text_field + "'"
                          : "field '" + options.text_field + "' is not a string";
    return false;
  }
  if (is_blank(t.string)) {
    bad.kind = BadKind::kEmptyText;
    bad.detail = "field '" + options.text_field + "' is empty";
    return false;
  }
  id.clear();
  const JsonField& i = fields[1];
  if (i.found) {
    if (i.type == JsonField::kString)
      append_json_string(id, i.string);
    else if (i.type == JsonField::kNumber)
      id.assign(i.token);
    else {
      bad.kind = BadKind::kBadId;
      bad.detail = "field '" + options.id_field + "' is neither a string nor a number";
      return false;
    }
  }
  record.keep_value = -std::numeric_limits<double>::infinity();
  if (count == 3 && fields[2].found && fields[2].type == JsonField::kNumber)
    record.keep_value = std::strtod(std::string(fields[2].token).c_str(), nullptr);
  record.raw = line;
  record.text = t.string;
  record.id = id;
  return true;
}

}  // namespace

TextFormat parse_text_format(const std::string& name) {
  if (name == "jsonl") return TextFormat::kJsonl;
  if (name == "fortune") return TextFormat::kFortune;
  throw std::invalid_argument("unknown text format '" + name + "' (jsonl, fortune)");
}

Compression compression_of(const std::string& path) {
  auto ends_with = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return path.size() >= n && path.compare(path.size() - n, n, suffix) == 0;
  };
  if (ends_with(".gz")) return Compression::kGzip;
  if (ends_with(".zst") || ends_with(".zstd")) return Compression::kZstd;
  return Compression::kNone;
}

std::vector<TextFile> stat_text_files(const std::vector<std::string>& paths) {
  std::vector<TextFile> files;
  for (const std::string& path : paths) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot open: " + errno_text());
    if (!S_ISREG(st.st_mode)) throw InputError(path + ": not a regular file");
    files.push_back({path, static_cast<uint64_t>(st.st_size), compression_of(path)});
  }
  return files;
}

std::vector<TextPiece> plan_text_pieces(const std::vector<TextFile>& files, TextFormat format,
                                        int rank, int size) {
  uint64_t total = 0;
  for (const TextFile& f : files) total += f.bytes;
  // Rank r owns [bound(r), bound(r+1)); 128-bit to avoid overflow of r * total.
  auto bound = [&](int r) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(total) * r) / size);
  };
  const uint64_t lo = bound(rank), hi = bound(rank + 1);
  // A point p belongs to the rank owning byte p; the end of the corpus to the last rank.
  auto owns = [&](uint64_t p) { return p >= total ? rank == size - 1 : (p >= lo && p < hi); };
  std::vector<TextPiece> pieces;
  uint64_t base = 0;
  for (int i = 0; i < static_cast<int>(files.size()); ++i) {
    const TextFile& f = files[i];
    const bool splittable =
        format == TextFormat::kJsonl && f.compression == Compression::kNone && f.bytes > 0;
    if (splittable) {
      const uint64_t b = std::max(lo, base), e = std::min(hi, base + f.bytes);
      if (b < e) pieces.push_back({i, b - base, e - base, b == base && e == base + f.bytes});
    } else if (owns(base + f.bytes / 2)) {
      pieces.push_back({i, 0, f.bytes, true});
    }
    base += f.bytes;
  }
  return pieces;
}

const char* bad_kind_name(BadKind kind) {
  switch (kind) {
    case BadKind::kMalformedJson:
      return "malformed_json";
    case BadKind::kMissingText:
      return "missing_text";
    case BadKind::kBadId:
      return "bad_id";
    case BadKind::kInvalidUtf8:
      return "invalid_utf8";
    case BadKind::kEmptyText:
      return "empty_text";
    case BadKind::kTooLong:
      return "too_long";
    case BadKind::kEmptyFile:
      return "empty_file";
    case BadKind::kTruncated:
      return "truncated";
    case BadKind::kCorrupt:
      return "corrupt";
  }
  return "unknown";
}

PieceStats read_text_piece(const TextFile& file, const TextPiece& piece,
                           const TextReadOptions& options,
                           const std::function<void(const TextRecord&)>& on_record,
                           const std::function<void(const BadRecord&)>& on_bad) {
  PieceStats stats;
  auto bad = [&](BadKind kind, int64_t line, std::string detail) {
    ++stats.bad;
    on_bad(BadRecord{kind, line, std::move(detail)});
  };
  if (file.bytes == 0) {
    bad(BadKind::kEmptyFile, 0, "the file is empty");
    return stats;
  }
  // A piece that starts inside a plain file begins after the first '\n' at or after
  // begin - 1: the line holding byte begin - 1 belongs to the previous piece.
  uint64_t start = 0;
  if (!piece.whole && piece.begin > 0) {
    Fd fd(file.path);
    uint64_t at = piece.begin - 1;
    std::vector<char> buf(1 << 16);
    start = file.bytes;  // no '\n' after begin - 1: nothing starts here
    while (at < file.bytes) {
      const ssize_t got = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(at));
      if (got < 0) throw InputError(file.path + ": read failed: " + errno_text());
      if (got == 0) break;
      const void* nl = std::memchr(buf.data(), '\n', static_cast<size_t>(got));
      if (nl) {
        start = at + static_cast<uint64_t>(static_cast<const char*>(nl) - buf.data()) + 1;
        break;
      }
      at += static_cast<uint64_t>(got);
    }
    if (start >= piece.end) return stats;
  }
  const uint64_t stop = piece.whole ? UINT64_MAX : piece.end - start;  // relative to start

  std::unique_ptr<ByteSource> source = open_source(file, start);
  LineReader reader(*source, options.max_record_bytes);
  LineReader::Line line;
  TextRecord record;
  BadRecord why{BadKind::kMalformedJson, 0, {}};
  std::string id;
  JsonField fields[3];
  fields[0].name = options.text_field;
  fields[1].name = options.id_field;
  fields[2].name = options.keep_field;
  int64_t lineno = -1;
  // A final line without '\n' in a truncated stream is part of the damage, not a record.
  auto cut_short = [&](const LineReader::Line& l) {
    return !l.terminated && !source->truncated().empty();
  };
  // A line that ends inside a damaged gzip member: dropped with the member (kCorrupt).
  const uint64_t damaged_from = source->damaged_from();
  int64_t corrupt = 0;
  auto damaged = [&](const LineReader::Line& l) {
    return l.offset + l.bytes.size() + (l.terminated ? 1 : 0) > damaged_from;
  };
  auto drop = [&](int64_t at) {
    ++corrupt;
    bad(BadKind::kCorrupt, at, source->damage());
  };

  if (options.format == TextFormat::kJsonl) {
    while (reader.next(line)) {
      if (line.offset >= stop) break;
      ++lineno;
      ++stats.lines;
      if (damaged(line)) {
        drop(lineno);
        continue;
      }
      if (cut_short(line)) break;
      if (line.too_long) {
        bad(BadKind::kTooLong, lineno,
            "the line is longer than " + std::to_string(options.max_record_bytes) + " bytes");
        continue;
      }
      if (options.raw_lines) {  // no parsing: every line that fits is passed on
        record = TextRecord{};
        record.raw = line.bytes;
        record.line = lineno;
        ++stats.records;
        stats.bytes += line.bytes.size() + 1;
        on_record(record);
        continue;
      }
      if (!parse_jsonl(line.bytes, options, fields, id, record, why)) {
        bad(why.kind, lineno, why.detail);
        continue;
      }
      record.line = lineno;
      ++stats.records;
      stats.bytes += record.raw.size() + 1;
      on_record(record);
    }
  } else {
    // Fortune: records separated by lines holding only '%'.
    std::string raw;
    int64_t first = 0;
    bool too_long = false;
    bool in_damage = false;  // a line of the record (or the '%' ending it) is damaged
    auto flush = [&](bool at_end) {
      if (in_damage) {
        drop(first);
      } else if (raw.empty() && !too_long) {
        if (!at_end) bad(BadKind::kEmptyText, first, "empty record between '%' lines");
      } else if (too_long) {
        bad(BadKind::kTooLong, first,
            "the record is longer than " + std::to_string(options.max_record_bytes) + " bytes");
      } else if (!valid_utf8(raw)) {
        bad(BadKind::kInvalidUtf8, first, "the record is not valid UTF-8");
      } else if (is_blank(raw)) {
        bad(BadKind::kEmptyText, first, "the record is blank");
      } else {
        record = TextRecord{};
        record.raw = raw;
        record.text = raw;
        record.line = first;
        ++stats.records;
        stats.bytes += raw.size();
        on_record(record);
      }
      raw.clear();
      too_long = false;
      in_damage = false;
    };
    while (reader.next(line)) {
      ++lineno;
      ++stats.lines;
      if (damaged(line)) {  // the record is dropped with the member: its text is not kept
        if (!in_damage && raw.empty() && !too_long) first = lineno;
        in_damage = true;
        if (line.bytes == "%" || line.bytes == "%\r") {
          flush(false);
          first = lineno + 1;
        }
        continue;
      }
      if (cut_short(line)) break;
      if (raw.empty() && !too_long) first = lineno;
      if (!line.too_long && (line.bytes == "%" || line.bytes == "%\r")) {
        flush(false);
        first = lineno + 1;
        continue;
      }
      if (line.too_long || raw.size() + line.bytes.size() + 1 > options.max_record_bytes) {
        too_long = true;
        raw.clear();
        continue;
      }
      if (!too_long) {
        raw.append(line.bytes);
        raw.push_back('\n');
      }
    }
    if (source->truncated().empty() || in_damage) flush(true);  // a damaged last record too
  }
  if (damaged_from != UINT64_MAX) {
    // The member may hold no whole line (or lie past the last one): report it once anyway.
    if (corrupt == 0) bad(BadKind::kCorrupt, stats.lines, source->damage());
  } else if (!source->truncated().empty()) {
    bad(BadKind::kTruncated, std::max<int64_t>(lineno, 0), source->truncated());
  }
  return stats;
}

bool valid_utf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    // Fast path: 8 ASCII bytes at a time.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace sf::io
