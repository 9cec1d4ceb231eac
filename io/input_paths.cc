#include "io/input_paths.h"

#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

namespace sf::io {
namespace {

namespace fs = std::filesystem;

bool has_magic(const std::string& text) { return text.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> split_components(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// Pattern components p[i..] against path components c[j..]; `**` takes any number of
// components, none of them hidden.
bool match_components(const std::vector<std::string>& p, size_t i,
                      const std::vector<std::string>& c, size_t j) {
  if (i == p.size()) return j == c.size();
  if (p[i] == "**") {
    for (size_t k = j;; ++k) {
      if (match_components(p, i + 1, c, k)) return true;
      if (k == c.size() || c[k][0] == '.') return false;
    }
  }
  return j < c.size() && ::fnmatch(p[i].c_str(), c[j].c_str(), FNM_PATHNAME | FNM_PERIOD) == 0 &&
         match_components(p, i + 1, c, j + 1);
}

// Every regular file below `dir` (symlinked files too, symlinked directories not entered) for
// which keep(its path relative to dir) holds, as dir/relative.
template <class Keep>
std::vector<std::string> walk(const std::string& dir, Keep keep) {
  std::vector<std::string> found;
  std::error_code ec;
  const fs::path root = dir.empty() ? fs::path(".") : fs::path(dir);
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code status_ec;
    if (!it->is_regular_file(status_ec)) continue;
    const fs::path relative = it->path().lexically_relative(root);
    if (!keep(relative)) continue;
    found.push_back(dir.empty() ? relative.string() : it->path().string());
  }
  if (ec) throw InputError((dir.empty() ? "." : dir) + ": cannot list: " + ec.message());
  return found;
}

std::vector<std::string> walk_directory(const std::string& dir,
                                        const std::vector<std::string>& globs) {
  return walk(dir, [&](const fs::path& relative) {
    return matches_input_globs(relative.filename().string(), globs);
  });
}

// `**` patterns: the walk starts below the components without wildcards.
std::vector<std::string> expand_globstar(const std::string& pattern) {
  const bool absolute = !pattern.empty() && pattern[0] == '/';
  const std::vector<std::string> parts = split_components(pattern);
  size_t first_magic = 0;
  while (first_magic < parts.size() && !has_magic(parts[first_magic])) ++first_magic;
  std::string base = absolute ? "/" : "";
  for (size_t i = 0; i < first_magic; ++i) base += parts[i] + (i + 1 < first_magic ? "/" : "");
  const std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(first_magic),
                                      parts.end());
  std::error_code ec;
  if (!base.empty() && !fs::is_directory(base, ec)) return {};
  return walk(base, [&](const fs::path& relative) {
    std::vector<std::string> components;
    for (const fs::path& part : relative) components.push_back(part.string());
    return match_components(rest, 0, components, 0);
  });
}

// Other patterns: glob(3); a directory it matches is walked like a directory entry.
std::vector<std::string> expand_glob(const std::string& pattern,
                                     const std::vector<std::string>& globs) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::unique_ptr<glob_t, void (*)(glob_t*)> release(&matches, ::globfree);
  if (rc == GLOB_NOMATCH) return {};
  if (rc != 0)
    throw InputError(pattern + ": cannot expand the pattern (glob error " + std::to_string(rc) +
                     ")");
  std::vector<std::string> found;
  for (size_t i = 0; i < matches.gl_pathc; ++i) {
    const std::string path = matches.gl_pathv[i];
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) found.push_back(path);
    if (S_ISDIR(st.st_mode)) {
      std::vector<std::string> below = walk_directory(path, globs);
      found.insert(found.end(), below.begin(), below.end());
    }
  }
  return found;
}

}  // namespace

std::vector<std::string> default_input_globs(const std::string& format) {
  const std::vector<std::string> text = {"*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.jsonl.zstd",
                                         "*.ndjson"};
  const std::map<std::string, std::vector<std::string>> vectors = {
      {"hdf5", {"*.h5", "*.hdf5"}}, {"fvecs", {"*.fvecs"}},
      {"bvecs", {"*.bvecs"}},       {"ivecs", {"*.ivecs"}},
      {"npy", {"*.npy"}},           {"idx", {"*.idx", "*-ubyte", "*-ubyte.gz", "*.idx.gz"}}};
  if (format == "jsonl") return text;
  if (format == "fortune") return {"*", "!*.dat", "!*.u8"};
  if (auto it = vectors.find(format); it != vectors.end()) return it->second;
  std::vector<std::string> all = text;  // auto: every format, told apart by the extension
  for (const auto& entry : vectors) all.insert(all.end(), entry.second.begin(), entry.second.end());
  return all;
}

bool matches_input_globs(const std::string& name, const std::vector<std::string>& globs) {
  bool taken = false;
  for (const std::string& glob : globs) {
    const bool exclude = !glob.empty() && glob[0] == '!';
    const char* pattern = glob.c_str() + (exclude ? 1 : 0);
    if (::fnmatch(pattern, name.c_str(), FNM_PERIOD) != 0) continue;
    if (exclude) return false;
    taken = true;
  }
  return taken;
}

InputFiles expand_input_paths(const std::vector<std::string>& entries,
                              const std::vector<std::string>& globs) {
  InputFiles files;
  std::set<std::pair<dev_t, ino_t>> seen_inodes;
  std::set<std::string> seen_missing;
  auto add = [&](const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (seen_missing.insert(path).second) files.paths.push_back(path);
      return;
    }
    if (!seen_inodes.insert({st.st_dev, st.st_ino}).second) return;
    files.paths.push_back(path);
    files.bytes += static_cast<uint64_t>(st.st_size);
  };
  for (const std::string& entry : entries) {
    struct stat st;
    const bool exists = ::stat(entry.c_str(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
      files.expanded = true;
      std::vector<std::string> found = walk_directory(entry, globs);
      if (found.empty())
        throw InputError(entry + ": a directory with no file matching input.glob (" + join(globs) +
                         ")");
      std::sort(found.begin(), found.end());
      for (const std::string& path : found) add(path);
    } else if (!exists && has_magic(entry)) {
      files.expanded = true;
      const bool globstar = entry == "**" || entry.rfind("**/", 0) == 0 ||
                            entry.find("/**/") != std::string::npos ||
                            (entry.size() >= 3 && entry.compare(entry.size() - 3, 3, "/**") == 0);
      std::vector<std::string> found =
          globstar ? expand_globstar(entry) : expand_glob(entry, globs);
      if (found.empty()) throw InputError(entry + ": matches no file");
      std::sort(found.begin(), found.end());
      for (const std::string& path : found) add(path);
    } else {
      add(entry);  // a file, or what the reader will report (missing, a FIFO, ...)
    }
  }
  return files;
}

}  // namespace sf::io
