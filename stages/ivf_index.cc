#include "stages/ivf_index.h"

#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/invlists/InvertedLists.h>

#include <stdexcept>

#include "stages/block_parallel.h"

namespace sf::stages {

faiss::IndexIVF* find_ivf(faiss::Index* index) {
  if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) return find_ivf(pt->index);
  return dynamic_cast<faiss::IndexIVF*>(index);
}

const faiss::IndexIVF* find_ivf(const faiss::Index* index) {
  return find_ivf(const_cast<faiss::Index*>(index));
}

faiss::OPQMatrix* find_opq(faiss::Index* index) {
  auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index);
  return pt != nullptr && pt->chain.size() == 1 ? dynamic_cast<faiss::OPQMatrix*>(pt->chain[0])
                                                : nullptr;
}

faiss::IndexIVF& ivf_of(faiss::Index& index, const char* who) {
  faiss::IndexIVF* ivf = find_ivf(&index);
  if (ivf == nullptr) throw std::invalid_argument(std::string(who) + ": not an IVF index");
  return *ivf;
}

const faiss::IndexIVF& ivf_of(const faiss::Index& index, const char* who) {
  return ivf_of(const_cast<faiss::Index&>(index), who);
}

std::unique_ptr<faiss::Index> make_ivf_index(int d, const std::string& factory,
                                             bool inner_product) {
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::index_factory(d, factory.c_str(),
                                     inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2));
  } catch (const faiss::FaissException& e) {
    throw std::invalid_argument("index.factory '" + factory + "' is not a valid FAISS factory string for d=" +
                                std::to_string(d) + ": " + e.what());
  }
  const faiss::IndexIVF* ivf = find_ivf(index.get());
  const char* why = nullptr;
  if (ivf == nullptr)
    why = "it does not make an IndexIVF";
  else if (dynamic_cast<const faiss::IndexIVFPQR*>(ivf) != nullptr)
    why = "IVFPQR keeps a refinement index outside its inverted lists";
  else if (dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists) == nullptr)
    why = "its inverted lists are not plain arrays (fast-scan layouts cannot be merged)";
  if (why != nullptr)
    throw UnshardableFactory("index.factory '" + factory + "': " + why +
                             "; shardforge builds IVF indexes such as 'IVF1024,Flat', "
                             "'IVF1024,PQ16np', 'IVF1024,SQ8', 'OPQ16,IVF1024,PQ16np', "
                             "'PCA64,IVF1024,Flat', 'IVF1024_HNSW32,Flat'");
  return index;
}

void set_ntotal(faiss::Index& index, faiss::Index::idx_t ntotal) {
  index.ntotal = ntotal;
  if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(&index)) set_ntotal(*pt->index, ntotal);
}

void fill_quantizer(faiss::IndexIVF& ivf, int64_t nlist, const float* centroids) {
  ivf.quantizer->reset();
  {
    const SingleThreadedBlas one_thread;  // HNSW insertion is only deterministic so
    ivf.quantizer->add(nlist, centroids);
  }
  ivf.quantizer->is_trained = true;
}

void set_nprobe(faiss::Index* index, int nprobe) {
  ivf_of(*index, "set_nprobe").nprobe = static_cast<size_t>(nprobe);
}

double list_imbalance(const std::vector<int64_t>& sizes) {
  double sum = 0, squares = 0;
  for (int64_t n : sizes) {
    sum += static_cast<double>(n);
    squares += static_cast<double>(n) * static_cast<double>(n);
  }
  return sum > 0 ? squares * static_cast<double>(sizes.size()) / (sum * sum) : 0;
}

}  // namespace sf::stages
