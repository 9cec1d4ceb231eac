// Text outputs written part by part (one part per rank, concatenated by rank 0): kept/,
// duplicates.jsonl, ids.jsonl, pairs.jsonl.
#pragma once

#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "io/text_corpus.h"

namespace sf::io {

// "part-RRRRR" (+ ".jsonl" for JSONL).
std::string part_name(int rank, TextFormat format);

// Concatenates <parts_dir>/part-RRRRR.jsonl of every rank into `path` (atomic), then removes
// the parts and parts_dir when it is left empty. Throws naming a missing part.
void concat_parts(const std::string& parts_dir, int ranks, const std::string& path);

// Writes text with an ofstream and a 1 MiB buffer; throws naming the file.
class FileWriter {
 public:
  explicit FileWriter(const std::string& path);
  void write(std::string_view s);
  void close();

 private:
  std::string path_;
  std::vector<char> buf_;
  std::ofstream out_;
};

}  // namespace sf::io
