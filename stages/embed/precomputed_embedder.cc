#include "stages/embed/precomputed_embedder.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>

namespace sf::stages::embed {

std::unique_ptr<PrecomputedEmbedder> PrecomputedEmbedder::from_file(const std::string& path,
                                                                    const std::string& dataset,
                                                                    int dim) {
  std::unique_ptr<PrecomputedEmbedder> embedder(new PrecomputedEmbedder());
  embedder->path_ = path;
  embedder->file_ = std::make_unique<io::VectorCorpus>(std::vector<std::string>{path},
                                                       io::VectorFormat::kAuto, dataset);
  embedder->dim_ = embedder->file_->dim();
  if (dim != 0 && dim != embedder->dim_)
    throw std::invalid_argument("embed.dim is " + std::to_string(dim) + " but embed.vectors " +
                                path + " holds " + std::to_string(embedder->dim_) +
                                "-dimensional vectors");
  return embedder;
}

std::unique_ptr<PrecomputedEmbedder> PrecomputedEmbedder::from_field(const std::string& field,
                                                                     int dim) {
  std::unique_ptr<PrecomputedEmbedder> embedder(new PrecomputedEmbedder());
  embedder->field_ = field;
  embedder->dim_ = dim;
  return embedder;
}

void PrecomputedEmbedder::read_field(std::string_view raw, int64_t row, float* out,
                                     int expected_dim) const {
  const std::string where = "document at row " + std::to_string(row) + ": embed.vectors_field '" +
                            field_ + "'";
  const nlohmann::json record = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  if (!record.is_object()) throw io::InputError(where + ": the record is not a JSON object");
  const auto it = record.find(field_);
  if (it == record.end()) throw io::InputError(where + " is missing");
  if (!it->is_array()) throw io::InputError(where + " is not an array of numbers");
  if (static_cast<int>(it->size()) != expected_dim)
    throw io::InputError(where + " has " + std::to_string(it->size()) + " values, expected " +
                         std::to_string(expected_dim));
  for (int j = 0; j < expected_dim; ++j) {
    const nlohmann::json& value = (*it)[static_cast<size_t>(j)];
    if (!value.is_number()) throw io::InputError(where + "[" + std::to_string(j) + "] is not a number");
    const double v = value.get<double>();
    if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max())
      throw io::InputError(where + "[" + std::to_string(j) + "] is not a finite float32");
    out[j] = static_cast<float>(v);
  }
}

void PrecomputedEmbedder::fit_begin() {
  fit_docs_ = 0;
  first_[0] = std::numeric_limits<int64_t>::max();  // (row, length): no document yet
  first_[1] = 0;
  first_error_ = nullptr;
}

void PrecomputedEmbedder::fit_batch(const DocBatch& docs) {
  const bool first = fit_docs_ == 0;
  fit_docs_ += static_cast<int64_t>(docs.size());
  if (file_ || dim_ != 0 || !first || docs.size() == 0) return;
  // The dimension is the length of the array of the corpus's first document.
  try {
    const std::string_view raw = docs.raw.at(0);
    const nlohmann::json record = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
    const auto it = record.is_object() ? record.find(field_) : record.end();
    first_[0] = docs.rows[0];
    first_[1] = (record.is_object() && it != record.end() && it->is_array())
                    ? static_cast<int64_t>(it->size())
                    : 0;  // embed() reports what is wrong with it
  } catch (...) {
    first_error_ = std::current_exception();
  }
}

void PrecomputedEmbedder::fit_end(cluster::Comm& comm) {
  if (file_) {
    const int64_t corpus_rows = comm.sum(fit_docs_);
    if (corpus_rows != file_->rows())
      throw io::InputError("embed.vectors " + path_ + " has " + std::to_string(file_->rows()) +
                           " rows but the corpus has " + std::to_string(corpus_rows) +
                           " documents: it must hold one vector per document, in corpus order");
    return;
  }
  if (dim_ != 0) return;
  cluster::agree(comm, "embed: vector dimension", first_error_);
  const int64_t first_row = comm.min(first_[0]);
  int64_t length = first_[0] == first_row ? first_[1] : std::numeric_limits<int64_t>::max();
  comm.allreduce_min(&length, 1);
  if (first_row == std::numeric_limits<int64_t>::max())
    throw std::invalid_argument("embed: the corpus has no documents");
  if (length <= 0)
    throw io::InputError("document at row " + std::to_string(first_row) +
                         ": embed.vectors_field '" + field_ +
                         "' is missing or empty, so the vector dimension is unknown");
  dim_ = static_cast<int>(length);
}

void PrecomputedEmbedder::embed(const DocBatch& docs, float* out) const {
  if (dim_ <= 0) throw std::logic_error("PrecomputedEmbedder::embed before fit()");
  if (file_) {
    std::lock_guard<std::mutex> lock(file_mutex_);
    for (size_t i = 0; i < docs.size();) {
      size_t run = 1;  // consecutive rows read in one call
      while (i + run < docs.size() && docs.rows[i + run] == docs.rows[i] + static_cast<int64_t>(run)) ++run;
      if (docs.rows[i] < 0 || docs.rows[i] + static_cast<int64_t>(run) > file_->rows())
        throw io::InputError("embed.vectors " + path_ + " has no row " +
                             std::to_string(docs.rows[i] + static_cast<int64_t>(run) - 1));
      file_->read(docs.rows[i], static_cast<int64_t>(run), out + i * static_cast<size_t>(dim_));
      i += run;
    }
    return;
  }
  for (size_t i = 0; i < docs.size(); ++i)
    read_field(docs.raw.at(i), docs.rows.at(i), out + i * static_cast<size_t>(dim_), dim_);
}

nlohmann::json PrecomputedEmbedder::state() const {
  return {{"format_version", kEmbedderStateVersion}, {"method", "precomputed"}, {"dim", dim_}};
}

}  // namespace sf::stages::embed
