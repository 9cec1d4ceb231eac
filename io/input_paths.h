// The files an `input.paths` list names: files as written, directories (every matching regular
// file below them, recursively) and glob patterns (`*`, `?`, `[...]` within one path component,
// `**` = any number of directories). No MPI: every rank expands the same entries.
//
//   expand_input_paths({"corpus/", "extra/**/*.jsonl.zst", "one.jsonl"}, {"*.jsonl"})
//
// Each directory's or pattern's files are sorted by byte order of their path, so the list does
// not depend on the filesystem's order; entries keep the order they are written in (a list of
// files reads as before). A file named twice (the same inode) is kept at its first place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/vector_file.h"  // InputError

namespace sf::io {

// The file-name patterns a directory's files must match when input.glob is empty, for
// input.format: the extensions its readers take (`auto`: every text and vector format).
// `!pattern` excludes (fortune: `*`, `!*.dat`, `!*.u8`, strfile's index and its link).
std::vector<std::string> default_input_globs(const std::string& format);

// True when `name` matches `globs`: at least one pattern without `!`, and no `!pattern`.
// Matched against the file name alone (fnmatch, FNM_PERIOD: `*` skips dot files).
bool matches_input_globs(const std::string& name, const std::vector<std::string>& globs);

struct InputFiles {
  std::vector<std::string> paths;  // the files, in reading order
  uint64_t bytes = 0;              // their sizes, summed (files that exist)
  bool expanded = false;           // some entry was a directory or a pattern
};

// Expands `entries` (see above); `globs` filters the files found below a directory (a pattern
// is its own filter). An entry that is neither a directory nor a pattern is kept as written
// even when it does not exist: the reader says why it cannot open it. Symlinked files are
// taken; symlinked directories are not entered (no loops).
// Throws InputError naming the entry for a directory or pattern that matches no file, or a
// directory that cannot be listed.
InputFiles expand_input_paths(const std::vector<std::string>& entries,
                              const std::vector<std::string>& globs);

}  // namespace sf::io
