#include "stages/list_scan.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <typeinfo>

namespace sf::stages {
namespace {

using L2Heap = faiss::CMax<float, int64_t>;  // keeps the k smallest distances
using IpHeap = faiss::CMin<float, int64_t>;  // keeps the k largest inner products

template <class C>
void push(int k, float* dis, int64_t* ids, float d, int64_t id) {
  if (C::cmp(dis[0], d)) faiss::heap_replace_top<C>(k, dis, ids, d, id);
}

}  // namespace

BatchScanner::BatchScanner(const faiss::IndexIVF& ivf, int k, int64_t nq, const float* queries)
    : ivf_(ivf),
      k_(k),
      nq_(nq),
      queries_(queries),
      inner_product_(ivf.metric_type == faiss::METRIC_INNER_PRODUCT),
      flat_(typeid(ivf) == typeid(faiss::IndexIVFFlat)),
      dis_(static_cast<size_t>(nq) * k),
      ids_(static_cast<size_t>(nq) * k) {
  for (int64_t q = 0; q < nq; ++q) {
    if (inner_product_)
      faiss::heap_heapify<IpHeap>(k, dis_.data() + q * k, ids_.data() + q * k);
    else
      faiss::heap_heapify<L2Heap>(k, dis_.data() + q * k, ids_.data() + q * k);
  }
  if (!flat_) scanners_.resize(static_cast<size_t>(nq));
}

BatchScanner::~BatchScanner() = default;

void BatchScanner::scan_list(const faiss::InvertedLists& lists, int64_t list_no,
                             const std::vector<int64_t>& which,
                             const std::vector<float>& coarse_dis) {
  const size_t n = lists.list_size(list_no);
  if (n == 0 || which.empty()) return;
  codes_scanned_ += static_cast<int64_t>(n * which.size());
  faiss::InvertedLists::ScopedCodes codes(&lists, list_no);
  faiss::InvertedLists::ScopedIds list_ids(&lists, list_no);
  const size_t d = ivf_.d;
  if (flat_) {
    // Gather the group, one brute-force k-NN of the group against the list.
    const auto* x = reinterpret_cast<const float*>(codes.get());
    const size_t nb = which.size();
    const int kk = static_cast<int>(std::min<size_t>(k_, n));
    group_.resize(nb * d);
    for (size_t i = 0; i < nb; ++i)
      std::copy(queries_ + which[i] * d, queries_ + (which[i] + 1) * d, group_.begin() + i * d);
    group_dis_.resize(nb * kk);
    group_ids_.resize(nb * kk);
    if (inner_product_)
      faiss::knn_inner_product(group_.data(), x, d, nb, n, kk, group_dis_.data(), group_ids_.data());
    else
      faiss::knn_L2sqr(group_.data(), x, d, nb, n, kk, group_dis_.data(), group_ids_.data());
    for (size_t i = 0; i < nb; ++i) {
      const int64_t q = which[i];
      const float* qv = queries_ + q * d;
      float* hd = dis_.data() + q * k_;
      int64_t* hi = ids_.data() + q * k_;
      for (int t = 0; t < kk; ++t) {
        const int64_t pos = group_ids_[i * kk + t];
        if (pos < 0) continue;
        const float* y = x + pos * d;
        if (inner_product_)
          push<IpHeap>(k_, hd, hi, faiss::fvec_inner_product(qv, y, d), list_ids.get()[pos]);
        else
          push<L2Heap>(k_, hd, hi, faiss::fvec_L2sqr(qv, y, d), list_ids.get()[pos]);
      }
    }
    return;
  }
  for (size_t i = 0; i < which.size(); ++i) {
    const int64_t q = which[i];
    std::unique_ptr<faiss::InvertedListScanner>& scanner = scanners_[q];
    if (!scanner) {
      scanner.reset(ivf_.get_InvertedListScanner(false));
      scanner->set_query(queries_ + q * d);
    }
    scanner->set_list(list_no, coarse_dis[i]);
    scanner->scan_codes(n, codes.get(), list_ids.get(), dis_.data() + q * k_,
                        ids_.data() + q * k_, k_);
  }
}

void BatchScanner::finish() {
  for (int64_t q = 0; q < nq_; ++q) {
    if (inner_product_)
      faiss::heap_reorder<IpHeap>(k_, dis_.data() + q * k_, ids_.data() + q * k_);
    else
      faiss::heap_reorder<L2Heap>(k_, dis_.data() + q * k_, ids_.data() + q * k_);
  }
  scanners_.clear();
}

void merge_topk(int k, bool inner_product, const std::vector<const float*>& dis,
                const std::vector<const int64_t*>& ids, float* out_dis, int64_t* out_ids) {
  if (inner_product)
    faiss::heap_heapify<IpHeap>(k, out_dis, out_ids);
  else
    faiss::heap_heapify<L2Heap>(k, out_dis, out_ids);
  for (size_t part = 0; part < dis.size(); ++part) {
    for (int t = 0; t < k; ++t) {
      if (ids[part][t] < 0) break;  // sorted: the rest is padding
      if (inner_product)
        push<IpHeap>(k, out_dis, out_ids, dis[part][t], ids[part][t]);
      else
        push<L2Heap>(k, out_dis, out_ids, dis[part][t], ids[part][t]);
    }
  }
  if (inner_product)
    faiss::heap_reorder<IpHeap>(k, out_dis, out_ids);
  else
    faiss::heap_reorder<L2Heap>(k, out_dis, out_ids);
}

}  // namespace sf::stages
