// Stage `embed`: documents -> float32 vectors, one row per document.
//
// An embedder is a per-batch transform (embed()); one that needs corpus-wide statistics (the
// hashed embedder's idf) computes them first in fit(), its one collective step. Embedders are
// chosen by name (`embed.method`) through make_embedder. A model-based embedder (e.g. an ONNX
// sentence encoder) plugs in by implementing embed() — and fit() only if it needs the corpus —
// and adding its name to make_embedder; none ships, since no model can be downloaded here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/comm.h"

namespace sf::stages::embed {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual int dim() const = 0;
  // Collective: every rank passes all of its documents (normalised text, see
  // stages/dedup/text.h) once, before any embed(). Default: nothing to learn.
  virtual void fit(cluster::Comm& comm, const std::vector<std::string_view>& texts) {
    (void)comm;
    (void)texts;
  }
  // Local, thread-safe after fit(): writes texts.size() x dim() floats, row-major, to `out`.
  virtual void embed(const std::vector<std::string_view>& texts, float* out) const = 0;
};

struct EmbedOptions {
  std::string method = "hashed";  // hashed
  int dim = 256;
  uint64_t seed = 0;  // feature hashing seed
};

// Throws std::invalid_argument naming the method for an unknown one, or dim < 1.
std::unique_ptr<Embedder> make_embedder(const EmbedOptions& options);

}  // namespace sf::stages::embed
