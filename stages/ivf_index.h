// The indexes shardforge builds: anything FAISS's index_factory makes whose core is an
// IndexIVF with array inverted lists, optionally behind vector transforms (OPQ, PCA, ...).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/VectorTransform.h>

namespace sf::stages {

// index_factory(d, factory, metric), checked. Throws std::invalid_argument naming the
// factory string when FAISS rejects it (for this d), or UnshardableFactory when FAISS makes it
// but it is not an IVF index shardforge can shard and merge (IndexRefine, fast-scan IVF and
// other layouts are refused: a property of the string, whatever the data).
std::unique_ptr<faiss::Index> make_ivf_index(int d, const std::string& factory,
                                             bool inner_product);
class UnshardableFactory : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The IndexIVF at the core of `index` (itself, or inside IndexPreTransform). nullptr if none.
faiss::IndexIVF* find_ivf(faiss::Index* index);
const faiss::IndexIVF* find_ivf(const faiss::Index* index);

// The OPQ rotation of `index` when it is "OPQ<m>,IVF..." (an IndexPreTransform whose one
// transform is an OPQMatrix); nullptr otherwise.
faiss::OPQMatrix* find_opq(faiss::Index* index);

// find_ivf, or throws std::invalid_argument "<who>: not an IVF index".
faiss::IndexIVF& ivf_of(faiss::Index& index, const char* who);
const faiss::IndexIVF& ivf_of(const faiss::Index& index, const char* who);

// Sets nprobe on the IVF inside `index`.
void set_nprobe(faiss::Index* index, int nprobe);

// Sets ntotal of `index` and of every wrapper down to its IVF (IndexPreTransform keeps its
// own count), after lists were filled or emptied directly.
void set_ntotal(faiss::Index& index, faiss::Index::idx_t ntotal);

// FAISS's imbalance factor of lists of these sizes, nlist * sum(n^2) / (sum n)^2 (1: perfectly
// even; 0 when every list is empty), as InvertedLists::imbalance_factor computes it for lists in
// memory; here from sizes alone, in 64 bits (FAISS 1.7.3's histogram form takes int).
double list_imbalance(const std::vector<int64_t>& sizes);

// Replaces the coarse quantizer's centroids with `centroids` (nlist x d) and marks it
// trained. The add runs single-threaded: HNSW insertion is only deterministic then.
void fill_quantizer(faiss::IndexIVF& ivf, int64_t nlist, const float* centroids);

}  // namespace sf::stages
