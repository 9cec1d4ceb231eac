#include "io/text_output.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "io/atomic_file.h"

namespace sf::io {

std::string part_name(int rank, TextFormat format) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "part-%05d", rank);
  return std::string(buf) + (format == TextFormat::kJsonl ? ".jsonl" : "");
}

FileWriter::FileWriter(const std::string& path)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
  buf_.resize(1 << 20);
  out_.rdbuf()->pubsetbuf(buf_.data(), static_cast<std::streamsize>(buf_.size()));
}
void FileWriter::write(std::string_view s) {
  out_.write(s.data(), static_cast<std::streamsize>(s.size()));
}
void FileWriter::close() {
  out_.flush();
  if (!out_) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
  out_.close();
}

void concat_parts(const std::string& parts_dir, int ranks, const std::string& path) {
  publish_file(path, [&](const std::string& tmp) {
    FileWriter out(tmp);
    std::vector<char> buf(1 << 20);
    for (int r = 0; r < ranks; ++r) {
      std::ifstream in(parts_dir + "/" + part_name(r, TextFormat::kJsonl), std::ios::binary);
      if (!in)
        throw std::runtime_error(parts_dir + ": the part of rank " + std::to_string(r) +
                                 " is missing");
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        out.write(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
      }
    }
    out.close();
  });
  // The parts, then their folder if nothing else is in it.
  for (int r = 0; r < ranks; ++r)
    std::filesystem::remove(parts_dir + "/" + part_name(r, TextFormat::kJsonl));
  std::error_code ec;
  if (std::filesystem::is_empty(parts_dir, ec) && !ec) std::filesystem::remove(parts_dir, ec);
}

}  // namespace sf::io
