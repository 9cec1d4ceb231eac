#include "stages/dedup/corpus.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace sf::stages::dedup {

namespace {

struct HashKey {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo); }
};
struct HashEq {
  bool operator()(const Hash128& a, const Hash128& b) const {
    return a.lo == b.lo && a.hi == b.hi;
  }
};

}  // namespace

void read_and_sketch(const SketchOptions& options, const MinHasher& minhash, LocalCorpus& corpus,
                     const std::function<void(int64_t, int64_t)>& progress,
                     const StopRequestFn& stop) {
  const io::TextReadOptions& read = options.read;
  const KeepPolicy& keep = options.keep;
  const NormaliseOptions& norm = options.normalise;
  const int ngram = options.ngram;
  const bool near = options.near, keep_sets = options.keep_sets;
  const KeptTexts keep_texts = options.texts;
  const int perms = minhash.num_perm();
  std::unordered_map<Hash128, int32_t, HashKey, HashEq> seen;

  // A batch of records: texts sketched in parallel, then slots assigned in order.
  std::vector<std::string> texts, normalised;
  std::vector<Hash128> batch_hash;
  constexpr size_t kBatchDocs = 4096;
  constexpr size_t kBatchBytes = 32u << 20;
  size_t batch_bytes = 0;

  auto flush = [&] {
    const auto n = static_cast<int64_t>(texts.size());
    normalised.resize(texts.size());
    batch_hash.resize(texts.size());
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      normalise_text(texts[i], norm, normalised[i]);
      batch_hash[i] = exact_hash(normalised[i]);
    }
    const auto t1 = std::chrono::steady_clock::now();
    corpus.normalise_seconds += std::chrono::duration<double>(t1 - t0).count();
    // Slots in order: the first doc of each distinct non-empty text on this rank gets one.
    std::vector<int64_t> fresh;  // batch index -> needs a signature
    for (int64_t i = 0; i < n; ++i) {
      corpus.hashes.push_back(batch_hash[i]);
      int32_t s = -1;
      if (near && !normalised[i].empty()) {
        auto [it, inserted] = seen.try_emplace(batch_hash[i], static_cast<int32_t>(corpus.slots));
        if (inserted) {
          fresh.push_back(i);
          ++corpus.slots;
        } else {
          ++corpus.local_exact_skipped;
        }
        s = it->second;
      }
      corpus.slot.push_back(s);
    }
    const size_t base = corpus.signatures.size() / static_cast<size_t>(perms);
    corpus.signatures.resize((base + fresh.size()) * static_cast<size_t>(perms));
    if (keep_sets) corpus.shingle_sets.resize(base + fresh.size());
    const auto m = static_cast<int64_t>(fresh.size());
    for (int64_t i = 0; i < n; ++i) corpus.text_bytes += texts[i].size();
    for (int64_t k = 0; k < m; ++k) corpus.signature_text_bytes += texts[fresh[k]].size();
    const auto t2 = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      std::vector<uint64_t> shingles;
#pragma omp for schedule(dynamic, 16)
      for (int64_t k = 0; k < m; ++k) {
        shingles.clear();
        shingle_hashes(normalised[fresh[k]], ngram, shingles);
        minhash.signature(shingles.data(), shingles.size(),
                          corpus.signatures.data() + (base + k) * perms);
        if (keep_sets) {
          std::sort(shingles.begin(), shingles.end());
          shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
          corpus.shingle_sets[base + k] = shingles;
        }
      }
    }
    corpus.signature_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
    if (keep_texts.normalised)
      for (int64_t i = 0; i < n; ++i) corpus.texts.push_back(std::move(normalised[i]));
    texts.clear();
    batch_bytes = 0;
    if (stop && stop()) throw ReadingStopped{};
  };

  // Progress in the on-disk bytes of this rank's pieces: those of the pieces done, and how far
  // the reader is into the current one (compressed: 0 while it skips an earlier rank's lines).
  int64_t bytes_total = 0, bytes_before = 0;
  for (const io::TextPiece& piece : corpus.pieces)
    bytes_total += static_cast<int64_t>(piece.end - piece.begin);
  constexpr size_t kProgressEvery = 1024;  // records
  if (progress) progress(0, bytes_total);  // the clock starts before a .gz is checked
  for (size_t p = 0; p < corpus.pieces.size(); ++p) {
    const io::TextPiece& piece = corpus.pieces[p];
    const auto piece_bytes = static_cast<int64_t>(piece.end - piece.begin);
    corpus.piece_docs.push_back(static_cast<int64_t>(corpus.keep_score.size()));
    const io::PieceStats stats = io::read_text_piece(
        corpus.files[piece.file], piece, read,
        [&](const io::TextRecord& rec) {
          double score = 0;
          if (keep.kind == KeepPolicy::kLongest) score = static_cast<double>(rec.text.size());
          if (keep.kind == KeepPolicy::kField)
            score = std::isfinite(rec.keep_value) ? rec.keep_value
                                                  : std::numeric_limits<double>::lowest();
          corpus.keep_score.push_back(score);
          corpus.raw_bytes.push_back(static_cast<uint32_t>(
              rec.raw.size() + (read.format == io::TextFormat::kJsonl ? 1 : 2)));
          corpus.ids.emplace_back(rec.id);
          corpus.doc_line.push_back(rec.line);
          if (keep_texts.raw) corpus.raw.emplace_back(rec.raw);
          texts.emplace_back(rec.text);
          batch_bytes += rec.text.size();
          if (texts.size() >= kBatchDocs || batch_bytes >= kBatchBytes) flush();
          if (progress && corpus.keep_score.size() % kProgressEvery == 0) {
            const uint64_t in =
                rec.file_bytes_read > piece.begin ? rec.file_bytes_read - piece.begin : 0;
            // The reader reads ahead: the piece is done only when it has ended.
            progress(bytes_before + std::min(piece_bytes - 1, static_cast<int64_t>(in)),
                     bytes_total);
          }
        },
        [&](const io::BadRecord& bad) { corpus.bad.add(static_cast<int>(p), bad); });
    corpus.piece_lines.push_back(stats.lines);
    bytes_before += piece_bytes;
    if (progress) progress(bytes_before, bytes_total);
  }
  corpus.piece_docs.push_back(static_cast<int64_t>(corpus.keep_score.size()));
  flush();
}

void reread_documents(const LocalCorpus& corpus, const io::TextReadOptions& read,
                      const std::function<void(int64_t, const io::TextRecord&)>& fn) {
  for (size_t p = 0; p < corpus.pieces.size(); ++p) {
    const io::TextPiece& piece = corpus.pieces[p];
    int64_t i = corpus.piece_docs[p];
    const int64_t end = corpus.piece_docs[p + 1];
    io::read_text_piece(
        corpus.files[piece.file], piece, read,
        [&](const io::TextRecord& rec) {
          if (i >= end || corpus.doc_line[i] != rec.line) return;  // a bad record
          fn(i++, rec);
        },
        [](const io::BadRecord&) {});
    if (i != end)
      throw io::InputError(corpus.files[piece.file].path +
                           ": changed while dedup ran (or since its sketch checkpoint)");
  }
}

void read_texts(const io::TextReadOptions& read, const NormaliseOptions& norm,
                KeptTexts keep_texts, LocalCorpus& corpus) {
  const auto docs = static_cast<int64_t>(corpus.doc_line.size());
  std::vector<std::string> texts;
  texts.reserve(static_cast<size_t>(docs));
  reread_documents(corpus, read, [&](int64_t, const io::TextRecord& rec) {
    texts.emplace_back(rec.text);
    if (keep_texts.raw) corpus.raw.emplace_back(rec.raw);
  });
  if (!keep_texts.normalised) return;
  corpus.texts.resize(texts.size());
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < docs; ++i) normalise_text(texts[i], norm, corpus.texts[i]);
}

size_t LocalCorpus::piece_of(int64_t i) const {
  const auto it = std::upper_bound(piece_docs.begin(), piece_docs.end(), i);
  return static_cast<size_t>(it - piece_docs.begin()) - 1;
}

int64_t LocalCorpus::file_line(int64_t i) const {
  return piece_line_offset[piece_of(i)] + doc_line[static_cast<size_t>(i)] + 1;
}

}  // namespace sf::stages::dedup
