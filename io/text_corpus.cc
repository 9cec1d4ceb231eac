#include "io/text_corpus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "io/jsonl_fields.h"
#include "io/text_corpus/byte_source.h"
#include "io/text_corpus/jsonl_record.h"
#include "io/text_corpus/line_reader.h"

namespace sf::io {

using namespace text_detail;  // byte_source.h, line_reader.h, jsonl_record.h

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

namespace {

// The corpus as one line of bytes: each file's extent, and whether a cut may fall inside it.
struct Extent {
  uint64_t begin = 0, end = 0;
  bool atomic = false;
};

bool splittable(const TextFile& f, TextFormat format) {
  return format == TextFormat::kJsonl && f.bytes > 0;
}

// The ranks' cuts: rank r owns [cuts[r], cuts[r + 1]). No cut falls strictly inside an atomic
// extent; the largest share is as small as the atomic files allow (bottleneck); each cut is
// the one nearest to the even split r * T / n among those that keep that bound.
std::vector<uint64_t> plan_cuts(const std::vector<Extent>& extents, uint64_t total, int size) {
  const auto n = static_cast<uint64_t>(size);
  // The atomic extent strictly around p, or null.
  auto inside = [&](uint64_t p) -> const Extent* {
    auto it = std::upper_bound(extents.begin(), extents.end(), p,
                               [](uint64_t v, const Extent& e) { return v < e.end; });
    return it != extents.end() && it->atomic && it->begin < p ? &*it : nullptr;
  };
  // Ranks needed with shares of at most `cap` bytes (greedy: each share as long as it can be).
  auto ranks_needed = [&](uint64_t cap) {
    uint64_t ranks = 1, load = 0;
    for (const Extent& e : extents) {
      const uint64_t s = e.end - e.begin;
      if (!e.atomic) {
        load += s;
        if (load > cap) {
          ranks += (load - 1) / cap;
          load -= ((load - 1) / cap) * cap;
        }
      } else if (load + s > cap) {
        ++ranks;
        load = s;
      } else {
        load += s;
      }
    }
    return ranks;
  };
  uint64_t lo = (total + n - 1) / n;
  for (const Extent& e : extents)
    if (e.atomic) lo = std::max(lo, e.end - e.begin);
  uint64_t hi = std::max(lo, total);
  while (lo < hi) {  // the smallest largest share
    const uint64_t mid = lo + (hi - lo) / 2;
    if (ranks_needed(mid) <= n)
      hi = mid;
    else
      lo = mid + 1;
  }
  const uint64_t cap = std::max<uint64_t>(lo, 1);
  // least[k]: the smallest p such that k ranks can take [p, total) (greedy from the end).
  std::vector<uint64_t> least(n + 1, 0);
  least[0] = total;
  for (uint64_t k = 1; k <= n; ++k) {
    const uint64_t e = least[k - 1];
    uint64_t p = e > cap ? e - cap : 0;
    if (const Extent* a = inside(p)) p = a->end;
    least[k] = p;
  }
  std::vector<uint64_t> cuts(n + 1, 0);
  cuts[n] = total;
  for (uint64_t r = 1; r < n; ++r) {
    const uint64_t from = cuts[r - 1];
    uint64_t most = std::min(total, from + cap);
    if (const Extent* a = inside(most)) most = a->begin;
    const uint64_t least_cut = std::max(least[n - r], from);
    const auto even = static_cast<uint64_t>((static_cast<unsigned __int128>(total) * r) / n);
    uint64_t cut = std::clamp(even, least_cut, std::max(least_cut, most));
    // Inside an atomic file: the file goes to the rank holding its middle byte.
    if (const Extent* a = inside(cut))
      cut = a->begin + (a->end - a->begin) / 2 < even ? a->end : a->begin;
    cuts[r] = cut;
  }
  return cuts;
}

}  // namespace

std::vector<TextPiece> plan_text_pieces(const std::vector<TextFile>& files, TextFormat format,
                                        int rank, int size) {
  std::vector<Extent> extents;
  uint64_t total = 0;
  for (const TextFile& f : files) {
    extents.push_back({total, total + f.bytes, !splittable(f, format)});
    total += f.bytes;
  }
  const std::vector<uint64_t> cuts = plan_cuts(extents, total, size);
  const uint64_t lo = cuts[rank], hi = cuts[rank + 1];
  // A point p belongs to the rank owning byte p; the end of the corpus to the last rank.
  auto owns = [&](uint64_t p) { return p >= total ? rank == size - 1 : (p >= lo && p < hi); };
  std::vector<TextPiece> pieces;
  for (int i = 0; i < static_cast<int>(files.size()); ++i) {
    const TextFile& f = files[i];
    const uint64_t base = extents[i].begin;
    if (!extents[i].atomic) {
      const uint64_t b = std::max(lo, base), e = std::min(hi, base + f.bytes);
      if (b < e) pieces.push_back({i, b - base, e - base, b == base && e == base + f.bytes});
    } else if (f.bytes == 0 ? owns(base) : (base >= lo && base < hi)) {
      pieces.push_back({i, 0, f.bytes, true});
    }
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
  const bool compressed = file.compression != Compression::kNone;
  uint64_t start = 0;
  if (!piece.whole && piece.begin > 0 && !compressed) {
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
  std::unique_ptr<ByteSource> source = open_source(file, start);
  // The piece's lines: those that start in [first, stop) of the source. A compressed file's
  // piece is its on-disk byte range scaled to the decompressed bytes (every rank computes the
  // same cuts); the lines before it are decompressed and skipped.
  uint64_t first = 0;
  uint64_t stop = piece.whole ? UINT64_MAX : piece.end - start;
  if (!piece.whole && compressed) {
    const auto scale = [&](uint64_t at) {
      return static_cast<uint64_t>(static_cast<unsigned __int128>(at) *
                                   source->decompressed_bytes() / file.bytes);
    };
    first = piece.begin == 0 ? 0 : scale(piece.begin);
    stop = piece.end >= file.bytes ? UINT64_MAX : scale(piece.end);
  }
  // Whether this piece holds the file's last line (or, for a file without lines, its start):
  // the one piece that reports how the data ended.
  uint64_t last_start = UINT64_MAX;
  auto holds_end = [&] {
    const uint64_t at = last_start == UINT64_MAX ? 0 : last_start;
    return at >= first && at < stop;
  };
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

  bool at_end = true;  // the data's end was reached (not the piece's)
  if (options.format == TextFormat::kJsonl) {
    while (reader.next(line)) {
      if (line.offset >= stop) {
        at_end = false;
        break;
      }
      last_start = line.offset;
      if (line.offset < first) continue;  // an earlier piece's line
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
        record.file_bytes_read = start + source->consumed();
        on_record(record);
        continue;
      }
      if (!parse_jsonl(line.bytes, options, fields, id, record, why)) {
        bad(why.kind, lineno, why.detail);
        continue;
      }
      record.line = lineno;
      record.file_bytes_read = start + source->consumed();
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
        record.file_bytes_read = start + source->consumed();
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
  if (!at_end || !holds_end()) return stats;  // a later piece reports the end
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
