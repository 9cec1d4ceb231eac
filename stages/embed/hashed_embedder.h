// The `hashed` embedder: no model weights. Signed feature hashing of word unigrams, word
// bigrams and character 3-, 4- and 5-grams (of the bytes of the normalised text, padded with a
// space at each end) into `dim` buckets; sublinear tf per bucket (sign(v) * (1 + ln|v|) of the
// bucket's signed count); idf per bucket over the whole corpus (document frequencies summed
// across ranks in fit(): ln((1 + N) / (1 + df)) + 1, as scikit-learn's smooth idf); then L2
// normalised. Deterministic: the same text gives the same bytes on any rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "stages/embed/embedder.h"

namespace sf::stages::embed {

class HashedEmbedder : public Embedder {
 public:
  // REQUIRES: dim >= 1.
  HashedEmbedder(int dim, uint64_t seed);
  int dim() const override { return dim_; }
  // Document frequencies per bucket, counted batch by batch (integers: the sum is exact in any
  // split); fit_end: one allreduce of them and the document count, then the idf.
  void fit_begin() override;
  void fit_batch(const DocBatch& docs) override;
  void fit_end(cluster::Comm& comm) override;
  // The term weights, once per document: counted for the document frequencies and, for a
  // selected document, kept as its unfinished row; finish_rows applies the idf and the L2
  // norm (as embed() does).
  bool embeds_while_fitting() const override { return true; }
  void fit_embed_batch(const DocBatch& docs, const std::vector<int64_t>& selected,
                       float* out) override;
  void finish_rows(float* rows, int64_t n) const override;
  void embed(const DocBatch& docs, float* out) const override;
  // {"format_version", "method": "hashed", "dim", "seed", "idf": [...]}.
  nlohmann::json state() const override;
  // REQUIRES: state() of a HashedEmbedder (checked: invalid_argument).
  static std::unique_ptr<HashedEmbedder> restore(const nlohmann::json& state);

  // The signed, sublinear term counts of one text (no idf, not normalised): `out` has dim()
  // values. Exposed for tests and for fit().
  void term_weights(std::string_view text, float* out) const;
  const std::vector<float>& idf() const { return idf_; }

 private:
  // idf_ from the summed document frequencies: df[b] per bucket, df[dim_] the document count.
  void set_idf(const std::vector<int64_t>& df);
  // Term weights -> embedding, in place: times idf_, then L2-normalised.
  void finish_row(float* row) const;

  int dim_;
  uint64_t seed_;
  std::vector<float> idf_;  // all 1 until fit()
  std::vector<int64_t> df_;  // between fit_begin and fit_end: per bucket, then the documents
};

}  // namespace sf::stages::embed
