#include "stages/embed/hashed_embedder.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "stages/mix64.h"

namespace sf::stages::embed {
namespace {

// Distinct salts keep the three feature families apart in the hash space.
constexpr uint64_t kWordSalt = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kBigramSalt = 0xc2b2ae3d27d4eb4fULL;
constexpr uint64_t kCharSalt = 0x165667b19e3779f9ULL;

using stages::mix64;

inline bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

HashedEmbedder::HashedEmbedder(int dim, uint64_t seed)
    : dim_(dim), seed_(seed), idf_(static_cast<size_t>(dim > 0 ? dim : 0), 1.0f) {
  if (dim < 1) throw std::invalid_argument("embed.dim must be >= 1, got " + std::to_string(dim));
}

void HashedEmbedder::term_weights(std::string_view text, float* out) const {
  std::fill(out, out + dim_, 0.0f);
  const uint64_t dim = static_cast<uint64_t>(dim_);
  // Bucket from the low 32 bits (multiply-shift), sign from the top bit.
  auto add = [&](uint64_t h) {
    const uint64_t bucket = ((h & 0xffffffffULL) * dim) >> 32;
    out[bucket] += (h >> 63) != 0 ? -1.0f : 1.0f;
  };

  // Words and bigrams.
  uint64_t previous = 0;
  bool have_previous = false;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && is_space(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !is_space(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) break;
    const uint64_t word = XXH3_64bits_withSeed(text.data() + start, i - start, seed_ ^ kWordSalt);
    add(word);
    if (have_previous) add(mix64(previous * 0x100000001b3ULL + word + kBigramSalt));
    previous = word;
    have_previous = true;
  }

  // Character (byte) 3-, 4- and 5-grams of " text ".
  thread_local std::string padded;
  padded.assign(1, ' ');
  padded.append(text);
  padded.push_back(' ');
  padded.append(8, '\0');  // so that every position can load 8 bytes
  const size_t n = padded.size() - 8;
  const uint64_t char_seed = mix64(seed_ ^ kCharSalt);
  for (size_t i = 0; i + 3 <= n; ++i) {
    uint64_t bytes;
    std::memcpy(&bytes, padded.data() + i, sizeof(bytes));
    add(mix64((bytes & 0xffffffULL) ^ (uint64_t{3} << 56) ^ char_seed));
    if (i + 4 <= n) add(mix64((bytes & 0xffffffffULL) ^ (uint64_t{4} << 56) ^ char_seed));
    if (i + 5 <= n) add(mix64((bytes & 0xffffffffffULL) ^ (uint64_t{5} << 56) ^ char_seed));
  }

  for (int b = 0; b < dim_; ++b) {
    const float v = out[b];
    if (v != 0.0f) out[b] = std::copysign(1.0f + std::log(std::fabs(v)), v);
  }
}

void HashedEmbedder::fit_begin() { df_.assign(static_cast<size_t>(dim_) + 1, 0); }

void HashedEmbedder::fit_batch(const DocBatch& docs) {
  if (df_.empty()) throw std::logic_error("HashedEmbedder::fit_batch before fit_begin");
  const std::vector<std::string_view>& texts = docs.texts;
  const auto n = static_cast<int64_t>(texts.size());
#pragma omp parallel
  {
    std::vector<int64_t> mine(static_cast<size_t>(dim_), 0);  // counts: the sum is exact
    std::vector<float> weights(static_cast<size_t>(dim_));
#pragma omp for schedule(dynamic, 256) nowait
    for (int64_t i = 0; i < n; ++i) {
      term_weights(texts[static_cast<size_t>(i)], weights.data());
      for (int b = 0; b < dim_; ++b) mine[b] += weights[b] != 0.0f ? 1 : 0;
    }
#pragma omp critical
    for (int b = 0; b < dim_; ++b) df_[b] += mine[b];
  }
  df_[dim_] += n;
}

void HashedEmbedder::fit_embed_batch(const DocBatch& docs, const std::vector<int64_t>& selected,
                                     float* out) {
  if (df_.empty()) throw std::logic_error("HashedEmbedder::fit_embed_batch before fit_begin");
  const size_t d = static_cast<size_t>(dim_);
  const auto n = static_cast<int64_t>(docs.texts.size());
  std::vector<int64_t> slot(static_cast<size_t>(n), -1);  // a document's output row
  for (size_t k = 0; k < selected.size(); ++k) {
    const int64_t i = selected[k];
    if (i < 0 || i >= n || (k > 0 && i <= selected[k - 1]))
      throw std::invalid_argument("fit_embed_batch: selected documents must be increasing indices");
    slot[static_cast<size_t>(i)] = static_cast<int64_t>(k);
  }
#pragma omp parallel
  {
    std::vector<int64_t> mine(d, 0);  // counts: the sum is exact
    std::vector<float> scratch(d);    // the row of a document that is not embedded
#pragma omp for schedule(dynamic, 256) nowait
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = slot[static_cast<size_t>(i)];
      float* row = k >= 0 ? out + static_cast<size_t>(k) * d : scratch.data();
      term_weights(docs.texts[static_cast<size_t>(i)], row);
      for (size_t b = 0; b < d; ++b) mine[b] += row[b] != 0.0f ? 1 : 0;
    }
#pragma omp critical
    for (size_t b = 0; b < d; ++b) df_[b] += mine[b];
  }
  df_[d] += n;
}

void HashedEmbedder::finish_rows(float* rows, int64_t n) const {
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < n; ++k) finish_row(rows + static_cast<size_t>(k) * static_cast<size_t>(dim_));
}

void HashedEmbedder::fit_end(cluster::Comm& comm) {
  if (df_.empty()) df_.assign(static_cast<size_t>(dim_) + 1, 0);  // no batch on this rank
  comm.allreduce_sum(df_.data(), df_.size());
  set_idf(df_);
  std::vector<int64_t>().swap(df_);
}

void HashedEmbedder::set_idf(const std::vector<int64_t>& df) {
  const double documents = static_cast<double>(df[dim_]);
  for (int b = 0; b < dim_; ++b)
    idf_[b] = static_cast<float>(std::log((1.0 + documents) / (1.0 + static_cast<double>(df[b]))) + 1.0);
}

void HashedEmbedder::finish_row(float* row) const {
  double norm = 0;
  for (int b = 0; b < dim_; ++b) {
    row[b] *= idf_[b];
    norm += static_cast<double>(row[b]) * row[b];
  }
  if (norm > 0) {
    const float inverse = static_cast<float>(1.0 / std::sqrt(norm));
    for (int b = 0; b < dim_; ++b) row[b] *= inverse;
  }
}

void HashedEmbedder::embed(const DocBatch& docs, float* out) const {
  const std::vector<std::string_view>& texts = docs.texts;
  for (size_t i = 0; i < texts.size(); ++i) {
    float* row = out + i * static_cast<size_t>(dim_);
    term_weights(texts[i], row);
    finish_row(row);
  }
}

nlohmann::json HashedEmbedder::state() const {
  return {{"format_version", kEmbedderStateVersion},
          {"method", "hashed"},
          {"dim", dim_},
          {"seed", seed_},
          {"idf", idf_}};
}

std::unique_ptr<HashedEmbedder> HashedEmbedder::restore(const nlohmann::json& state) {
  try {
    if (state.at("method") != "hashed") throw std::invalid_argument("not a hashed embedder");
    auto embedder = std::make_unique<HashedEmbedder>(state.at("dim").get<int>(),
                                                     state.at("seed").get<uint64_t>());
    std::vector<float> idf = state.at("idf").get<std::vector<float>>();
    if (idf.size() != embedder->idf_.size())
      throw std::invalid_argument("idf has " + std::to_string(idf.size()) + " values, dim is " +
                                  std::to_string(embedder->dim_));
    embedder->idf_ = std::move(idf);
    return embedder;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("hashed embedder state: ") + e.what());
  }
}

}  // namespace sf::stages::embed
