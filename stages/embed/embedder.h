// Stage `embed`: documents -> float32 vectors, one row per document.
//
// An embedder is a per-batch transform (embed()); one that needs corpus-wide statistics (the
// hashed embedder's idf) or a corpus-wide check (the precomputed embedder's row count) does it
// first in its fit over batches (fit_begin, fit_batch, fit_end: the collective step), so that
// a rank never holds its share of the texts. Embedders are chosen by name (`embed.method`)
// through make_embedder.
//
// Plugging in a model (e.g. an ONNX sentence encoder): implement embed() for a batch — the
// normalised texts are in DocBatch::texts, the original records in DocBatch::raw — and the
// fit only if the model needs the corpus; add the method's name to make_embedder (embedder.cc)
// and to the `embed.method` choices in runtime/config.cc. None ships: no model weights can be
// downloaded on the machines this is built on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"

namespace sf::stages::embed {

// A batch of documents of one rank. All three vectors have the same length (raw may be empty
// when no embedder needs it). Views must outlive the call they are passed to.
struct DocBatch {
  std::vector<std::string_view> texts;  // normalised text (stages/dedup/text.h)
  std::vector<int64_t> rows;            // global row numbers, increasing
  std::vector<std::string_view> raw;    // the record as in the input (a JSONL line)
  size_t size() const { return texts.size(); }
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  // Columns of every embedding. Known after construction (hashed, precomputed from a file) or
  // after fit() (precomputed from a JSONL field, when embed.dim is 0).
  virtual int dim() const = 0;
  // Fit over batches, before any embed(): fit_begin(), then fit_batch() (local) for each batch
  // of this rank's documents in row order, then fit_end() (collective: every rank calls it
  // once, also one that passed no batch). The same state, to the byte, as fit() over all of
  // them at once, for any split into batches. fit_end() throws alike on every rank for
  // corpus-wide problems. Default: nothing to learn.
  virtual void fit_begin() {}
  virtual void fit_batch(const DocBatch& docs) { (void)docs; }
  virtual void fit_end(cluster::Comm& comm) { (void)comm; }
  // One read instead of two, for an embedder whose fit computes what embed() computes anyway
  // (hashed: the term weights). When embeds_while_fitting(): fit_embed_batch(docs, selected,
  // out) does fit_batch(docs) and writes the unfinished rows of docs[selected[0]],
  // docs[selected[1]], ... (increasing indices) to out (selected.size() x dim()); after
  // fit_end(), finish_rows turns them into what embed() gives, to the byte. Local.
  virtual bool embeds_while_fitting() const { return false; }
  virtual void fit_embed_batch(const DocBatch& docs, const std::vector<int64_t>& selected,
                               float* out);
  virtual void finish_rows(float* rows, int64_t n) const {
    (void)rows;
    (void)n;
  }
  // Collective: fit over one batch of all of this rank's documents.
  void fit(cluster::Comm& comm, const DocBatch& docs) {
    fit_begin();
    fit_batch(docs);
    fit_end(comm);
  }
  // Local, thread-safe after fit(): writes docs.size() x dim() floats, row-major, to `out`.
  // Throws io::InputError naming the row for a document it cannot embed.
  virtual void embed(const DocBatch& docs, float* out) const = 0;
  // What embeds a new text the same way later (`shardforge query`), after fit(): a versioned
  // JSON object naming the method ({"format_version", "method", ...}).
  virtual nlohmann::json state() const = 0;
};

constexpr int kEmbedderStateVersion = 1;

// The embedder saved by state(). Throws std::invalid_argument for an unknown method or
// version, or a method that cannot embed new text (precomputed).
std::unique_ptr<Embedder> restore_embedder(const nlohmann::json& state);

struct EmbedOptions {
  std::string method = "hashed";  // hashed | precomputed
  int dim = 0;                    // 0: the method's own (hashed: 256; precomputed: the data's)
  uint64_t seed = 0;              // hashed: feature hashing seed
  std::string vectors;            // precomputed: HDF5 / .npy / fvecs file aligned by row, or
  std::string vectors_dataset = "embeddings";  // its HDF5 dataset
  std::string vectors_field;      // precomputed: JSONL field holding a float array instead
};

// Throws std::invalid_argument naming the key for an unknown method or inconsistent options,
// io::InputError for an unreadable vectors file.
std::unique_ptr<Embedder> make_embedder(const EmbedOptions& options);

}  // namespace sf::stages::embed
