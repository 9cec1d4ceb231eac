#include "stages/embed/embedder.h"

#include <stdexcept>

#include "stages/embed/hashed_embedder.h"
#include "stages/embed/precomputed_embedder.h"

namespace sf::stages::embed {

void Embedder::fit_embed_batch(const DocBatch& docs, const std::vector<int64_t>& selected,
                               float* out) {
  (void)docs;
  (void)selected;
  (void)out;
  throw std::logic_error("fit_embed_batch: this embedder does not embed while fitting");
}

std::unique_ptr<Embedder> make_embedder(const EmbedOptions& options) {
  if (options.dim < 0)
    throw std::invalid_argument("embed.dim must be >= 0, got " + std::to_string(options.dim));
  if (options.method == "hashed") {
    return std::make_unique<HashedEmbedder>(options.dim == 0 ? 256 : options.dim, options.seed);
  }
  if (options.method == "precomputed") {
    const bool file = !options.vectors.empty(), field = !options.vectors_field.empty();
    if (file == field)
      throw std::invalid_argument(
          "embed.method 'precomputed' needs exactly one of embed.vectors (a file aligned by "
          "row) and embed.vectors_field (a JSONL field holding the vector)");
    if (file) return PrecomputedEmbedder::from_file(options.vectors, options.vectors_dataset, options.dim);
    return PrecomputedEmbedder::from_field(options.vectors_field, options.dim);
  }
  throw std::invalid_argument("unknown embed.method '" + options.method +
                              "' (known: hashed, precomputed)");
}

std::unique_ptr<Embedder> restore_embedder(const nlohmann::json& state) {
  if (!state.is_object() || state.value("format_version", 0) != kEmbedderStateVersion)
    throw std::invalid_argument("embedder state: not format version " +
                                std::to_string(kEmbedderStateVersion));
  const std::string method = state.value("method", "");
  if (method == "hashed") return HashedEmbedder::restore(state);
  if (method == "precomputed")
    throw std::invalid_argument(
        "the run's embedder is 'precomputed': its vectors came with the corpus, so it cannot "
        "embed a new text");
  throw std::invalid_argument("embedder state: unknown method '" + method + "'");
}

}  // namespace sf::stages::embed
