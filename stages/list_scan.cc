#include "stages/list_scan.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
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
    // Gather the group; one distance matrix of the group against the list (L2: FAISS's
    // pairwise_L2sqr, a GEMM; IP: fvec_inner_products_ny per query), in blocks of list rows.
    // A code whose matrix distance could enter the query's top-k is scored again with
    // fvec_L2sqr / fvec_inner_product, as a FAISS IVFFlat search scores it.
    const auto* x = reinterpret_cast<const float*>(codes.get());
    const size_t nb = which.size();
    if (nb < static_cast<size_t>(faiss::distance_compute_blas_threshold)) {
      // A small group: FAISS's own choice below its BLAS threshold, one exact distance per
      // pair (no GEMM pays off).
      for (size_t i = 0; i < nb; ++i) {
        const int64_t q = which[i];
        const float* qv = queries_ + q * d;
        float* hd = dis_.data() + q * k_;
        int64_t* hi = ids_.data() + q * k_;
        for (size_t t = 0; t < n; ++t) {
          if (inner_product_)
            push<IpHeap>(k_, hd, hi, faiss::fvec_inner_product(qv, x + t * d, d),
                         list_ids.get()[t]);
          else
            push<L2Heap>(k_, hd, hi, faiss::fvec_L2sqr(qv, x + t * d, d), list_ids.get()[t]);
        }
      }
      return;
    }
    constexpr size_t kBlock = 4096;
    const size_t block = std::min(n, kBlock);
    group_.resize(nb * d);
    group_norms_.resize(nb);
    for (size_t i = 0; i < nb; ++i) {
      std::copy(queries_ + which[i] * d, queries_ + (which[i] + 1) * d, group_.begin() + i * d);
      group_norms_[i] = faiss::fvec_norm_L2sqr(&group_[i * d], d);
    }
    group_dis_.resize(nb * block);
    for (size_t y0 = 0; y0 < n; y0 += block) {
      const size_t ny = std::min(block, n - y0);
      const float* y = x + y0 * d;
      if (inner_product_) {
        for (size_t i = 0; i < nb; ++i)
          faiss::fvec_inner_products_ny(&group_dis_[i * ny], &group_[i * d], y, d, ny);
      } else {
        faiss::pairwise_L2sqr(static_cast<int64_t>(d), static_cast<int64_t>(nb), group_.data(),
                              static_cast<int64_t>(ny), y, group_dis_.data());
      }
      for (size_t i = 0; i < nb; ++i) {
        const int64_t q = which[i];
        const float* qv = queries_ + q * d;
        float* hd = dis_.data() + q * k_;
        int64_t* hi = ids_.data() + q * k_;
        const float* row = &group_dis_[i * ny];
        // GEMM rounding: a relative error far below this margin on |q|^2 + |top|.
        const float margin =
            1e-4f *
            (group_norms_[i] + std::fabs(hd[0] == hd[0] && std::isfinite(hd[0]) ? hd[0] : 0.0f));
        for (size_t t = 0; t < ny; ++t) {
          if (inner_product_) {
            if (!(row[t] > hd[0] - margin)) continue;
            push<IpHeap>(k_, hd, hi, faiss::fvec_inner_product(qv, y + t * d, d),
                         list_ids.get()[y0 + t]);
          } else {
            if (!(row[t] < hd[0] + margin)) continue;
            push<L2Heap>(k_, hd, hi, faiss::fvec_L2sqr(qv, y + t * d, d), list_ids.get()[y0 + t]);
          }
        }
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
    scanner->scan_codes(n, codes.get(), list_ids.get(), dis_.data() + q * k_, ids_.data() + q * k_,
                        k_);
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
