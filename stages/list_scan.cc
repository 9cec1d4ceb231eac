#include "stages/list_scan.h"

#include <cblas.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/utils/Heap.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <typeinfo>

#include "stages/mix64.h"

namespace sf::stages {
namespace {

using L2Heap = faiss::CMax<float, int64_t>;  // keeps the k smallest distances
using IpHeap = faiss::CMin<float, int64_t>;  // keeps the k largest inner products

template <class C>
void push(int k, float* dis, int64_t* ids, float d, int64_t id) {
  if (C::cmp(dis[0], d)) faiss::heap_replace_top<C>(k, dis, ids, d, id);
}

// fvec_L2sqr / fvec_inner_product of one query against several codes, bit for bit what
// Debian's libfaiss computes: it is built for baseline x86-64, where both are FAISS's
// reference loops (one float accumulator, i = 0 .. d-1, no fused multiply-add: this file is
// compiled with -ffp-contract=off). The same loop runs for 8 codes at once, one per vector
// lane, so each lane's sum is the reference's; that is ~8x faster than calling it per code,
// whose serial additions bound it. lanes_match_faiss checks it against the linked libfaiss at
// run time; BatchScanner.FlatDistancesAreFaissBitForBit against FAISS's search.
typedef float Lanes __attribute__((vector_size(4 * sizeof(float))));

template <bool kInnerProduct>
void exact_distances(const float* q, const float* base, size_t d, const size_t* rows, size_t n,
                     float* out) {
  for (size_t c0 = 0; c0 < n; c0 += 8) {
    const float* y[8];
    for (size_t l = 0; l < 8; ++l) y[l] = base + rows[std::min(c0 + l, n - 1)] * d;
    Lanes lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
    for (size_t i = 0; i < d; ++i) {
      const Lanes vlo = {y[0][i], y[1][i], y[2][i], y[3][i]};
      const Lanes vhi = {y[4][i], y[5][i], y[6][i], y[7][i]};
      if constexpr (kInnerProduct) {
        lo += q[i] * vlo;
        hi += q[i] * vhi;
      } else {
        const Lanes dlo = q[i] - vlo, dhi = q[i] - vhi;
        lo += dlo * dlo;
        hi += dhi * dhi;
      }
    }
    float sums[8];
    std::memcpy(sums, &lo, sizeof(lo));
    std::memcpy(sums + 4, &hi, sizeof(hi));
    for (size_t l = 0; l < 8 && c0 + l < n; ++l) out[c0 + l] = sums[l];
  }
}

// Whether exact_distances gives what the linked libfaiss's fvec_L2sqr and fvec_inner_product
// give, bit for bit, at dimension d (checked once per d on 16 pseudo-random codes). A libfaiss
// built with SIMD kernels sums in another order: then the scanner calls FAISS's functions.
bool lanes_match_faiss(size_t d) {
  static std::mutex mutex;
  static std::map<size_t, bool> known;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto it = known.find(d);
  if (it != known.end()) return it->second;
  constexpr size_t kCodes = 16;
  std::vector<float> x((kCodes + 1) * d);
  for (size_t i = 0; i < x.size(); ++i)  // +-8192, 10 fractional bits
    x[i] = static_cast<float>(static_cast<int64_t>(mix64(i) >> 40) - (int64_t{1} << 23)) / 1024.0f;
  const float* q = x.data() + kCodes * d;
  std::vector<size_t> rows(kCodes);
  std::iota(rows.begin(), rows.end(), 0);
  std::vector<float> l2(kCodes), ip(kCodes);
  exact_distances<false>(q, x.data(), d, rows.data(), kCodes, l2.data());
  exact_distances<true>(q, x.data(), d, rows.data(), kCodes, ip.data());
  bool same = true;
  for (size_t c = 0; c < kCodes; ++c)
    same = same && l2[c] == faiss::fvec_L2sqr(q, x.data() + c * d, d) &&
           ip[c] == faiss::fvec_inner_product(q, x.data() + c * d, d);
  known[d] = same;
  return same;
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
  if (flat_) {
    lanes_match_faiss_ = lanes_match_faiss(ivf.d);
    query_norms_.resize(static_cast<size_t>(nq));
    const int d = static_cast<int>(ivf.d);
    for (int64_t q = 0; q < nq; ++q)
      query_norms_[q] = cblas_sdot(d, queries + q * d, 1, queries + q * d, 1);
  }
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
    // Gather the group; one distance matrix of the group against the list, in blocks of list
    // rows: one GEMM (inner products; L2 adds |q|^2 + |y|^2 - 2 q.y, the norms of the queries
    // computed once per batch). A code whose matrix distance could enter the query's top-k is
    // scored again exactly (exact_distances), as a FAISS IVFFlat search scores it. We call
    // BLAS rather than FAISS's pairwise_L2sqr because that recomputes the norms of the group
    // with the scalar loop on every call: one per (query, list) pair, as dear as ~200 codes
    // of the GEMM at d 784.
    const auto* x = reinterpret_cast<const float*>(codes.get());
    const size_t nb = which.size();
    constexpr size_t kBlock = 4096;
    const size_t block = std::min(n, kBlock);
    group_.resize(nb * d);
    for (size_t i = 0; i < nb; ++i)
      std::copy(queries_ + which[i] * d, queries_ + (which[i] + 1) * d, group_.begin() + i * d);
    group_dis_.resize(nb * block);
    code_norms_.resize(block);
    for (size_t y0 = 0; y0 < n; y0 += block) {
      const size_t ny = std::min(block, n - y0);
      const float* y = x + y0 * d;
      const int di = static_cast<int>(d), nbi = static_cast<int>(nb), nyi = static_cast<int>(ny);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nbi, nyi, di,
                  inner_product_ ? 1.0f : -2.0f, group_.data(), di, y, di, 0.0f, group_dis_.data(),
                  nyi);
      float max_code_norm = 0;
      for (size_t t = 0; t < ny; ++t) {
        code_norms_[t] = cblas_sdot(di, y + t * d, 1, y + t * d, 1);
        max_code_norm = std::max(max_code_norm, code_norms_[t]);
      }
      if (!inner_product_) {
        for (size_t i = 0; i < nb; ++i) {
          float* row = &group_dis_[i * ny];
          const float qn = query_norms_[which[i]];
          for (size_t t = 0; t < ny; ++t) row[t] += qn + code_norms_[t];
        }
      }
      for (size_t i = 0; i < nb; ++i) {
        const int64_t q = which[i];
        const float* qv = queries_ + q * d;
        float* hd = dis_.data() + q * k_;
        int64_t* hi = ids_.data() + q * k_;
        const std::vector<size_t>& pick =
            rescore_candidates(q, &group_dis_[i * ny], ny, margin(q, max_code_norm));
        exact_.resize(pick.size());
        if (!lanes_match_faiss_) {  // another libfaiss: its own functions
          for (size_t c = 0; c < pick.size(); ++c)
            exact_[c] = inner_product_ ? faiss::fvec_inner_product(qv, y + pick[c] * d, d)
                                       : faiss::fvec_L2sqr(qv, y + pick[c] * d, d);
        } else if (inner_product_) {
          exact_distances<true>(qv, y, d, pick.data(), pick.size(), exact_.data());
        } else {
          exact_distances<false>(qv, y, d, pick.data(), pick.size(), exact_.data());
        }
        for (size_t c = 0; c < pick.size(); ++c) {
          if (inner_product_)
            push<IpHeap>(k_, hd, hi, exact_[c], list_ids.get()[y0 + pick[c]]);
          else
            push<L2Heap>(k_, hd, hi, exact_[c], list_ids.get()[y0 + pick[c]]);
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

float BatchScanner::margin(int64_t q, float max_code_norm) const {
  // Bounds |matrix distance - exact distance| for every code of the block: both are sums of d
  // products, each off by at most d * u * (|q| + |y|)^2 (L2) or d * u * |q| |y| (inner
  // product), u = FLT_EPSILON / 2; twice the sum of the two, for the block's largest |y|.
  const float qn = std::sqrt(query_norms_[q]), yn = std::sqrt(max_code_norm);
  const float scale = inner_product_ ? qn * yn : (qn + yn) * (qn + yn);
  return 2.0f * static_cast<float>(ivf_.d) * std::numeric_limits<float>::epsilon() * scale;
}

// The codes of one matrix row that can enter query q's heap: those within the rounding margin
// m of its top (all while the heap is not full), and of those at most the k best and their near
// ties: a code worse than the row's k-th best by more than 2 m cannot beat any of those k
// exactly, so it is not scored again.
const std::vector<size_t>& BatchScanner::rescore_candidates(int64_t q, const float* row, size_t ny,
                                                            float m) {
  const float top = dis_[q * k_];
  const bool full = std::fabs(top) < std::numeric_limits<float>::max();  // else +-FLT_MAX
  pick_.clear();
  for (size_t t = 0; t < ny; ++t)
    if (!full || (inner_product_ ? row[t] > top - m : row[t] < top + m)) pick_.push_back(t);
  if (pick_.size() <= static_cast<size_t>(k_)) return pick_;
  keys_.resize(pick_.size());
  for (size_t c = 0; c < pick_.size(); ++c) keys_[c] = row[pick_[c]];
  if (inner_product_)
    std::nth_element(keys_.begin(), keys_.begin() + (k_ - 1), keys_.end(), std::greater<>());
  else
    std::nth_element(keys_.begin(), keys_.begin() + (k_ - 1), keys_.end());
  const float kth = keys_[k_ - 1];
  const float bound = inner_product_ ? kth - 2 * m : kth + 2 * m;
  size_t kept = 0;
  for (size_t t : pick_)
    if (inner_product_ ? row[t] >= bound : row[t] <= bound) pick_[kept++] = t;
  pick_.resize(kept);
  return pick_;
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
