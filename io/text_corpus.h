// Text corpora for deduplication: JSONL files (plain, .gz, .zst) and `%`-separated fortune
// files, many files forming one corpus. No MPI: a rank asks plan_text_pieces() for its share
// and reads it with read_text_piece(); the job turns per-rank record counts into global rows
// with a prefix sum.
//
// How the corpus is split between ranks, by bytes: the files' on-disk sizes are laid end to
// end (total T bytes) and cut into one range per rank, [cut(r), cut(r+1)).
//   - JSONL (plain, .gz, .zst): a rank reads the lines that START in its bytes (it skips the
//     partial line at its first byte and finishes its last line past its end), so any file is
//     shared by any number of ranks. A compressed file's range is scaled to its decompressed
//     bytes; each rank decompresses the file from its start and skips the earlier lines (one
//     .gz is sketched by every rank, at the price of decompressing the prefix again);
//   - fortune files and empty files are whole: no cut falls inside one.
// The cuts: the largest range as small as the whole files allow, each cut the one nearest to
// r*T/n that keeps that bound (a whole file goes to the rank holding its middle byte when
// that is as good). A corpus of JSONL alone is cut at r*T/n exactly.
// Records come out in (file, position) order, so rank r's records all precede rank r+1's.
//
// Bad input never disappears silently: each bad record (or file) is reported to on_bad with
// its kind and line (the caller decides whether it is fatal: input.strict).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "io/vector_file.h"  // InputError

namespace sf::io {

enum class TextFormat { kJsonl, kFortune };
enum class Compression { kNone, kGzip, kZstd };

// "jsonl" | "fortune"; throws std::invalid_argument otherwise.
TextFormat parse_text_format(const std::string& name);
// From the extension: .gz -> gzip, .zst / .zstd -> zstd, else none.
Compression compression_of(const std::string& path);

struct TextFile {
  std::string path;
  uint64_t bytes = 0;  // on-disk size
  Compression compression = Compression::kNone;
};

// Stats every path (no reading). Throws InputError for a missing file or a directory.
std::vector<TextFile> stat_text_files(const std::vector<std::string>& paths);

// One rank's share of one file. whole: read all of it. Else the lines that start in
// [begin, end) of the file (compressed: that range scaled to the decompressed bytes).
struct TextPiece {
  int file = 0;  // index into the file list
  uint64_t begin = 0;
  uint64_t end = 0;
  bool whole = false;
};

// The pieces rank `rank` of `size` reads, in corpus order. Deterministic; every rank can
// compute every other rank's pieces.
std::vector<TextPiece> plan_text_pieces(const std::vector<TextFile>& files, TextFormat format,
                                        int rank, int size);

// What can be wrong with a record or a file.
enum class BadKind {
  kMalformedJson,  // the line is not a JSON object
  kMissingText,    // no text field, or it is not a string
  kBadId,          // the id field is neither a string nor a number
  kInvalidUtf8,    // the record's bytes are not valid UTF-8
  kEmptyText,      // the text is empty or only whitespace
  kTooLong,        // the record is longer than max_record_bytes (it is skipped unread)
  kEmptyFile,      // the file holds no bytes at all (line 0)
  kTruncated,      // compressed data cut short (or corrupt zstd): nothing after `line` was read
  kCorrupt,        // a line of a damaged gzip member (its CRC or length does not match, or
                   // its data is not deflate): the member's records are dropped, nothing after
                   // it is read; one entry for a member without lines
};
constexpr int kBadKinds = 9;
// "malformed_json", "missing_text", "bad_id", "invalid_utf8", "empty_text", "too_long",
// "empty_file", "truncated", "corrupt".
const char* bad_kind_name(BadKind kind);

struct TextReadOptions {
  TextFormat format = TextFormat::kJsonl;
  std::string text_field = "text";
  std::string id_field = "id";  // absent in a record: TextRecord::id stays empty
  std::string keep_field;       // "": none. Else its numeric value -> keep_value
  uint64_t max_record_bytes = 16u << 20;
  // JSONL only: pass every line that is not too long to on_record without parsing it (raw
  // and line set, text and id empty): a second pass over records already checked.
  bool raw_lines = false;
};

// One good record. Views are valid only during the on_record call.
struct TextRecord {
  std::string_view raw;   // the record as in the file: JSONL line without its '\n';
                          // fortune: its lines, each with its '\n', without the '%' line
  std::string_view text;  // the text field (decoded JSON string), valid UTF-8, not blank
  std::string_view id;    // the id field as JSON (`"abc"` or `17`); empty when absent
  double keep_value = -std::numeric_limits<double>::infinity();  // keep_field's value, if numeric
  int64_t line = 0;  // 0-based line of the record's first line, relative to the piece
  // The file's on-disk bytes read so far (compressed: taken in by the decompressor), from the
  // file's start; the reader reads ahead of the record. For progress only.
  uint64_t file_bytes_read = 0;
};

struct BadRecord {
  BadKind kind;
  int64_t line = 0;    // 0-based, relative to the piece (as TextRecord::line)
  std::string detail;  // short reason, e.g. the JSON parser's message
};

struct PieceStats {
  int64_t lines = 0;    // lines that start in the piece (fortune: all lines incl. '%')
  int64_t records = 0;  // good records
  int64_t bad = 0;
  uint64_t bytes = 0;  // uncompressed bytes of good records' raw
};

// Reads one piece; calls may run in parallel on different pieces. Throws InputError (naming
// the file) when the file cannot be opened or read; bad records go to on_bad. Line numbers in
// callbacks are relative to the piece; whole pieces start at line 0 of the file. A .gz file is
// inflated twice: first to check every member's CRC and length, so that no record of a damaged
// member is passed on (its lines go to on_bad as kCorrupt).
PieceStats read_text_piece(const TextFile& file, const TextPiece& piece,
                           const TextReadOptions& options,
                           const std::function<void(const TextRecord&)>& on_record,
                           const std::function<void(const BadRecord&)>& on_bad);

// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool valid_utf8(std::string_view bytes);

}  // namespace sf::io
