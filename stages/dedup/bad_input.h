// The bad input of a text corpus read by many ranks, reported per file with file line numbers
// (each rank only knows its pieces' lines): the cross-rank half of reading.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "stages/dedup/corpus.h"

namespace sf::stages::dedup {

struct BadInputReport {
  // Rank 0: per file path {"bad_records", "counts": {kind: n}, "first_lines": {kind: [line]}}
  // (1-based lines, at most kFirstBadLines per kind); empty elsewhere.
  nlohmann::json per_file = nlohmann::json::object();
  int64_t total = 0;  // every rank: all ranks' bad records
  // Rank 0: "path:line: kind: detail" of the first bad record in corpus order ("" if none).
  std::string first;
};

// Collective. Every rank's corpus.bad and piece lines -> the report; also fills
// corpus.piece_line_offset (the lines of each piece's file in earlier ranks' pieces, which
// LocalCorpus::file_line needs). With `warn`, rank 0 logs one warning per file with bad
// records.
BadInputReport gather_bad_input(cluster::Comm& comm, LocalCorpus& corpus, bool warn);

}  // namespace sf::stages::dedup
