#include "stages/dedup/bad_input.h"

#include <spdlog/spdlog.h>

#include <climits>
#include <map>
#include <utility>
#include <vector>

namespace sf::stages::dedup {

BadInputReport gather_bad_input(cluster::Comm& comm, LocalCorpus& corpus, bool warn) {
  BadInputReport report;
  nlohmann::json mine = {{"pieces", nlohmann::json::array()}, {"bad", nlohmann::json::array()}};
  for (size_t p = 0; p < corpus.pieces.size(); ++p)
    mine["pieces"].push_back({corpus.pieces[p].file, corpus.piece_lines[p]});
  for (const auto& [key, entry] : corpus.bad.entries) {
    nlohmann::json first = nlohmann::json::array();
    for (const auto& [line, detail] : entry.first) first.push_back({line, detail});
    mine["bad"].push_back(
        {{"piece", key.first}, {"kind", key.second}, {"count", entry.count}, {"first", first}});
  }
  const std::string text = mine.dump();
  const auto parts = comm.allgather(cluster::Bytes(text.begin(), text.end()));
  report.total = comm.sum(corpus.bad.total);
  {  // each piece's first line in its file: the lines of that file in earlier ranks' pieces
    std::map<int, int64_t> earlier;
    for (int r = 0; r < comm.rank(); ++r) {
      const auto& part = parts[static_cast<size_t>(r)];
      const auto j = nlohmann::json::parse(std::string(part.begin(), part.end()));
      for (const auto& piece : j["pieces"]) earlier[piece[0].get<int>()] += piece[1].get<int64_t>();
    }
    for (size_t p = 0; p < corpus.pieces.size(); ++p) {
      corpus.piece_line_offset.push_back(earlier[corpus.pieces[p].file]);
      earlier[corpus.pieces[p].file] += corpus.piece_lines[p];
    }
  }
  if (comm.rank() == 0) {
    std::map<int, int64_t> file_lines;  // lines of the file in earlier ranks' pieces
    std::map<int, std::map<int, std::pair<int64_t, std::vector<std::pair<int64_t, std::string>>>>>
        per_file;
    for (const auto& part : parts) {
      const auto j = nlohmann::json::parse(std::string(part.begin(), part.end()));
      std::vector<int64_t> offset;
      for (const auto& piece : j["pieces"]) {
        const int file = piece[0].get<int>();
        offset.push_back(file_lines[file]);
        file_lines[file] += piece[1].get<int64_t>();
      }
      for (const auto& b : j["bad"]) {
        const int p = b["piece"].get<int>();
        const int file = j["pieces"][p][0].get<int>();
        auto& slot = per_file[file][b["kind"].get<int>()];
        slot.first += b["count"].get<int64_t>();
        for (const auto& f : b["first"])
          if (static_cast<int>(slot.second.size()) < kFirstBadLines)
            slot.second.emplace_back(offset[p] + f[0].get<int64_t>() + 1,
                                     f[1].get<std::string>());
      }
    }
    std::pair<int, int64_t> earliest{INT32_MAX, 0};
    for (const auto& [file, kinds] : per_file) {
      nlohmann::json counts = nlohmann::json::object(), lines = nlohmann::json::object();
      int64_t n = 0;
      std::string summary;
      for (const auto& [kind, slot] : kinds) {
        const char* name = io::bad_kind_name(static_cast<io::BadKind>(kind));
        counts[name] = slot.first;
        n += slot.first;
        nlohmann::json ls = nlohmann::json::array();
        std::string shown;
        for (const auto& [line, detail] : slot.second) {
          ls.push_back(line);
          shown += (shown.empty() ? "" : ", ") + std::to_string(line);
          const std::pair<int, int64_t> at{file, line};
          if (at < earliest) {
            earliest = at;
            report.first = corpus.files[file].path + ":" + std::to_string(line) + ": " + name +
                          ": " + detail;
          }
        }
        lines[name] = ls;
        summary += std::string(summary.empty() ? "" : "; ") + name + " " +
                   std::to_string(slot.first) + " (line" + (slot.second.size() > 1 ? "s " : " ") +
                   shown +
                   (slot.first > static_cast<int64_t>(slot.second.size()) ? ", ..." : "") + ")";
      }
      report.per_file[corpus.files[file].path] = {
          {"bad_records", n}, {"counts", counts}, {"first_lines", lines}};
      if (warn)
        spdlog::warn("input: {}: {} bad record(s) skipped: {}", corpus.files[file].path, n,
                     summary);
    }
  }
  return report;
}

}  // namespace sf::stages::dedup
