// A rank's share of a text corpus as dedup sees it: read once, each record sketched (exact
// hash, and the MinHash signature and shingle set of each distinct text), with what is needed
// to find the records again (pieces, lines) and to report bad input. `dedup` and `run` build
// on it (pipeline/text_dedup.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/text_corpus.h"
#include "stages/dedup/clusters.h"
#include "stages/dedup/minhash.h"
#include "stages/dedup/text.h"
#include "stages/stop_request.h"

namespace sf::stages::dedup {

constexpr int kFirstBadLines = 5;  // line numbers kept per file and kind

// Which record of a duplicate group is kept: the first (smallest row), the longest text, or
// the largest numeric value of a JSONL field.
struct KeepPolicy {
  enum Kind { kFirst, kLongest, kField } kind = kFirst;
  std::string field;  // kField: the JSONL field whose largest numeric value wins
};

// This rank's bad input: per piece and kind, the count and the first lines.
struct BadLog {
  struct Entry {
    int64_t count = 0;
    std::vector<std::pair<int64_t, std::string>> first;  // piece-relative line, detail

    template <class Archive>
    void serialize(Archive& ar, unsigned /*version*/) {
      ar & count & first;
    }
  };
  std::map<std::pair<int, int>, Entry> entries;  // (piece index, kind) -> entry
  int64_t total = 0;

  void add(int piece, const io::BadRecord& bad) {
    Entry& e = entries[{piece, static_cast<int>(bad.kind)}];
    ++e.count;
    ++total;
    if (static_cast<int>(e.first.size()) < kFirstBadLines)
      e.first.emplace_back(bad.line, bad.detail);
  }
};

// Which texts stay in memory after reading (for the embedder).
struct KeptTexts {
  bool normalised = false;  // LocalCorpus::texts
  bool raw = false;         // LocalCorpus::raw
};

// This rank's documents (good records), in corpus order: local doc i is global row
// range.begin + i.
struct LocalCorpus {
  std::vector<io::TextFile> files;
  std::vector<io::TextPiece> pieces;
  std::vector<int64_t> piece_lines;        // lines per piece
  std::vector<int64_t> piece_line_offset;  // lines of the piece's file in earlier ranks' pieces
  std::vector<double> keep_score;
  std::vector<Hash128> hashes;
  std::vector<int32_t> slot;  // signature slot per doc; -1: empty normalised text
  std::vector<uint32_t> raw_bytes;
  std::vector<int64_t> doc_line;     // piece-relative line of each doc
  std::vector<int64_t> piece_docs;   // first doc of each piece, and one past the last
  std::vector<std::string> ids;      // JSON text of the id field, "" when absent
  std::vector<uint32_t> signatures;  // slots x num_perm
  std::vector<std::vector<uint64_t>> shingle_sets;  // per slot, with dedup.verify: exact
  std::vector<std::string> texts;    // KeptTexts::normalised: normalised text per doc
  std::vector<std::string> raw;      // KeptTexts::raw: the record as in the input per doc
  int64_t slots = 0;
  int64_t local_exact_skipped = 0;  // signatures not computed: same hash seen on this rank
  // Wall seconds of the two sketch steps (inside read+sketch) and the text bytes they saw.
  double normalise_seconds = 0, signature_seconds = 0;
  uint64_t text_bytes = 0, signature_text_bytes = 0;
  BadLog bad;

  int64_t docs() const { return static_cast<int64_t>(keep_score.size()); }
  // The piece holding local doc i, and the doc's 1-based line in its file.
  size_t piece_of(int64_t i) const;
  int64_t file_line(int64_t i) const;
};

struct SketchOptions {
  io::TextReadOptions read;
  KeepPolicy keep;
  NormaliseOptions normalise;
  int ngram = 5;
  bool near = false;       // signatures (one slot per distinct text)
  bool keep_sets = false;  // and the sorted shingle sets (dedup.verify: exact)
  KeptTexts texts;
};

// read_and_sketch saw a stop request: the rank's reading is abandoned, no sketch.
struct ReadingStopped {};

// Local. Reads this rank's `corpus.pieces` (planned already) and sketches every good record:
// exact hash always; with options.near the signature (and shingle set) once per distinct
// normalised text of this rank. progress(bytes done, bytes): the pieces' on-disk bytes, every
// 1024 records and after each piece. Asks `stop` after every batch
// (a few tenths of a second of work) and throws ReadingStopped on a request.
void read_and_sketch(const SketchOptions& options, const MinHasher& minhash, LocalCorpus& corpus,
                     const std::function<void(int64_t, int64_t)>& progress,
                     const StopRequestFn& stop);

// Local. Reads this rank's pieces again and calls fn(local doc, record) for each good record,
// found by its line (bad records are skipped). Throws io::InputError naming a file that no
// longer holds the documents it held.
void reread_documents(const LocalCorpus& corpus, const io::TextReadOptions& read,
                      const std::function<void(int64_t, const io::TextRecord&)>& fn);

// Local. The texts of this rank's documents (normalised, and raw with texts.raw), read again
// for a rank whose sketch came from its checkpoint: no hashing, no MinHash.
void read_texts(const io::TextReadOptions& read, const NormaliseOptions& normalise,
                KeptTexts texts, LocalCorpus& corpus);

}  // namespace sf::stages::dedup
