// The `precomputed` embedder: vectors made upstream, supplied beside the text — a matrix file
// (HDF5 dataset, .npy or fvecs) whose row g is document g's vector, or a JSONL field holding
// the vector as an array of numbers. Checks: the file has one row per document of the corpus
// (fit), every vector has the expected dimension, values are finite.
#pragma once

#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "io/vector_file.h"
#include "stages/embed/embedder.h"

namespace sf::stages::embed {

class PrecomputedEmbedder : public Embedder {
 public:
  // From a file: opens it (reads the header). dim: 0 or the file's (else invalid_argument).
  static std::unique_ptr<PrecomputedEmbedder> from_file(const std::string& path,
                                                        const std::string& dataset, int dim);
  // From a JSONL field: dim 0 takes the first document's length (agreed in fit()).
  static std::unique_ptr<PrecomputedEmbedder> from_field(const std::string& field, int dim);

  int dim() const override { return dim_; }
  // fit_end: the corpus row count (the documents of every batch, summed over the ranks) must
  // equal the file's rows; from a field with dim 0, the dimension is the one of the document
  // with the smallest row (the first of this rank's first batch).
  void fit_begin() override;
  void fit_batch(const DocBatch& docs) override;
  void fit_end(cluster::Comm& comm) override;
  void embed(const DocBatch& docs, float* out) const override;
  // {"format_version", "method": "precomputed", "dim"}: restoring it is refused, since new
  // text has no precomputed vector.
  nlohmann::json state() const override;

 private:
  PrecomputedEmbedder() = default;
  void read_field(std::string_view raw, int64_t row, float* out, int expected_dim) const;

  int dim_ = 0;
  std::string path_;   // file mode
  std::string field_;  // field mode
  std::unique_ptr<io::VectorCorpus> file_;
  mutable std::mutex file_mutex_;  // VectorCorpus reads are not thread-safe
  // Between fit_begin and fit_end: this rank's documents, its first document's (row, vector
  // length), and what went wrong reading that length (agreed in fit_end).
  int64_t fit_docs_ = 0;
  int64_t first_[2] = {std::numeric_limits<int64_t>::max(), 0};
  std::exception_ptr first_error_;
};

}  // namespace sf::stages::embed
