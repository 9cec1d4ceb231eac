#include "stages/eval.h"

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <unordered_set>

#include "stages/batches.h"
#include "stages/ivf_index.h"

namespace sf::stages {
namespace {

// Keeps the best k (distance, id) per query. "Better" is smaller for L2, larger for IP;
// equal distances are ordered by id so the result does not depend on scan order.
class TopK {
 public:
  TopK(int64_t nq, int k, bool inner_product)
      : nq_(nq), k_(k), ip_(inner_product),
        dist_(static_cast<size_t>(nq) * k, inner_product ? -std::numeric_limits<float>::infinity()
                                                         : std::numeric_limits<float>::infinity()),
        ids_(static_cast<size_t>(nq) * k, -1) {}

  // Merges candidate lists (nq x ck, any order within a row).
  void merge(const float* dist, const int64_t* ids, int ck) {
    std::vector<std::pair<float, int64_t>> row;
    for (int64_t q = 0; q < nq_; ++q) {
      row.clear();
      for (int j = 0; j < k_; ++j) row.emplace_back(dist_[q * k_ + j], ids_[q * k_ + j]);
      for (int j = 0; j < ck; ++j)
        if (ids[q * ck + j] >= 0) row.emplace_back(dist[q * ck + j], ids[q * ck + j]);
      std::sort(row.begin(), row.end(), [&](const auto& a, const auto& b) {
        if (a.second < 0 || b.second < 0) return b.second < 0 && a.second >= 0;
        if (a.first != b.first) return ip_ ? a.first > b.first : a.first < b.first;
        return a.second < b.second;
      });
      for (int j = 0; j < k_; ++j) {
        dist_[q * k_ + j] = row[j].first;
        ids_[q * k_ + j] = row[j].second;
      }
    }
  }
  const std::vector<float>& distances() const { return dist_; }
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  int64_t nq_;
  int k_;
  bool ip_;
  std::vector<float> dist_;
  std::vector<int64_t> ids_;
};

cluster::Bytes pack(const std::vector<float>& dist, const std::vector<int64_t>& ids) {
  cluster::Bytes b(dist.size() * sizeof(float) + ids.size() * sizeof(int64_t));
  if (!dist.empty()) std::memcpy(b.data(), dist.data(), dist.size() * sizeof(float));
  if (!ids.empty())
    std::memcpy(b.data() + dist.size() * sizeof(float), ids.data(), ids.size() * sizeof(int64_t));
  return b;
}

// Leaves a local batch loop early on a stop request (caught right outside it).
struct LocalStop {};

}  // namespace

ExactScanPlan plan_exact_scan(int64_t batch_rows, int64_t nq, int k, int dim, int ranks,
                              uint64_t budget_bytes) {
  ExactScanPlan plan;
  const auto topk = static_cast<uint64_t>(nq) * static_cast<uint64_t>(k) * (4 + 8);
  plan.fixed_bytes = static_cast<uint64_t>(nq) * dim * 4 + 2 * topk +
                     2 * static_cast<uint64_t>(std::max(1, ranks)) * topk + 4096 * 1024 * 4;
  const uint64_t per_row = 2 * static_cast<uint64_t>(dim) * 4;
  constexpr int64_t kLeast = 1024;
  plan.need_bytes = plan.fixed_bytes + kLeast * per_row;
  plan.rows = std::max<int64_t>(1, batch_rows);
  if (budget_bytes == 0) return plan;
  const uint64_t half = budget_bytes / 2;
  const auto fits =
      half > plan.fixed_bytes ? static_cast<int64_t>((half - plan.fixed_bytes) / per_row) : 0;
  plan.rows = std::min(plan.rows, std::max(kLeast, fits));
  return plan;
}

Neighbours exact_neighbours(cluster::Comm& comm, io::VectorCorpus& corpus,
                            cluster::RowRange range, const float* queries, int64_t nq, int k,
                            bool inner_product, int64_t batch_rows, const ProgressFn& progress,
                            const StopRequestFn& stop_requested) {
  const int d = corpus.dim();
  TopK best(nq, k, inner_product);
  std::vector<float> dist;
  std::vector<faiss::Index::idx_t> labels;
  // The scan is local: a rank asked to stop leaves it at a batch boundary, and the ranks
  // agree on stopping right after it (a rank not asked finishes its scan first).
  bool stop_here = false;
  std::exception_ptr error;
  try {
    for_each_batch(
        corpus, range, batch_rows,
        [&](int64_t first, int64_t count, const float* x) {
          if (stop_requested && stop_requested()) throw LocalStop{};
          faiss::IndexFlat flat(d, inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
          flat.add(count, x);
          const int ck = static_cast<int>(std::min<int64_t>(k, count));
          dist.resize(static_cast<size_t>(nq) * ck);
          labels.resize(static_cast<size_t>(nq) * ck);
          flat.search(nq, queries, ck, dist.data(), labels.data());
          for (auto& l : labels)
            if (l >= 0) l += first;
          best.merge(dist.data(), labels.data(), ck);
        },
        progress, "eval: exact neighbours");
  } catch (const LocalStop&) {
    stop_here = true;
  } catch (...) {
    error = std::current_exception();
  }
  if (cluster::agree_or_stop(comm, "eval: exact neighbours", error,
                             stop_here || (stop_requested && stop_requested())))
    throw StageStopped("eval: exact neighbours");
  const std::vector<cluster::Bytes> parts = comm.gather(pack(best.distances(), best.ids()), 0);
  Neighbours out;
  out.nq = nq;
  out.k = k;
  // Agreed: rank 0 must not fail here while the others go on to the next collective.
  cluster::run_local_phase(comm, "eval: exact neighbours", [&] {
    if (comm.rank() != 0) return;
    TopK all(nq, k, inner_product);
    const size_t n = static_cast<size_t>(nq) * k;
    for (const cluster::Bytes& part : parts) {
      std::vector<float> pd(n);
      std::vector<int64_t> pi(n);
      std::memcpy(pd.data(), part.data(), n * sizeof(float));
      std::memcpy(pi.data(), part.data() + n * sizeof(float), n * sizeof(int64_t));
      all.merge(pd.data(), pi.data(), k);
    }
    out.ids = all.ids();
    out.distances = all.distances();
  });
  return out;
}

double knn_recall(const std::vector<int64_t>& found, int found_k, const Neighbours& truth,
                  int r) {
  // Queries whose truth has fewer than r ids (-1 padding: a corpus smaller than r) are
  // scored over the ids they have; each true id counts once however often it is found.
  double total = 0;
  int64_t scored = 0;
  std::unordered_set<int64_t> want;
  for (int64_t q = 0; q < truth.nq; ++q) {
    want.clear();
    for (int j = 0; j < r; ++j)
      if (truth.ids[q * truth.k + j] >= 0) want.insert(truth.ids[q * truth.k + j]);
    if (want.empty()) continue;
    const size_t expected = want.size();
    int hits = 0;
    for (int j = 0; j < r; ++j)
      if (want.erase(found[q * found_k + j]) > 0) ++hits;
    total += static_cast<double>(hits) / static_cast<double>(expected);
    ++scored;
  }
  return scored > 0 ? total / static_cast<double>(scored) : 0;
}

std::vector<EvalPoint> evaluate_index(cluster::Comm& comm, faiss::Index& index,
                                      const float* queries, int64_t nq, const Neighbours& truth,
                                      int k, const std::vector<int>& nprobes,
                                      const ProgressFn& progress) {
  const int search_k =
      static_cast<int>(std::min<int64_t>(std::max(k, 100), std::max<int64_t>(index.ntotal, 1)));
  const cluster::RowRange mine = cluster::row_range(nq, comm.rank(), comm.size());
  const int d = index.d;
  std::vector<float> dist(static_cast<size_t>(mine.size()) * search_k);
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(mine.size()) * search_k);
  std::vector<EvalPoint> points;
  const auto values = static_cast<int64_t>(nprobes.size());
  report(progress, "eval: search (nprobe values)", 0, values);
  for (int nprobe : nprobes) {
    cluster::run_local_phase(comm, "eval: search", [&] { set_nprobe(&index, nprobe); });
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    cluster::run_local_phase(comm, "eval: search", [&] {
      if (mine.size() > 0)
        index.search(mine.size(), queries + mine.begin * d, search_k, dist.data(), labels.data());
    });
    const double secs = comm.max(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const auto* raw = reinterpret_cast<const char*>(labels.data());
    const std::vector<cluster::Bytes> parts =
        comm.gather(cluster::Bytes(raw, raw + labels.size() * sizeof(labels[0])), 0);
    EvalPoint p;
    p.nprobe = nprobe;
    p.seconds = secs;
    p.qps = secs > 0 ? static_cast<double>(nq) / secs : 0;
    cluster::run_local_phase(comm, "eval: recall", [&] {
      if (comm.rank() != 0) return;
      std::vector<int64_t> found;
      found.reserve(static_cast<size_t>(nq) * search_k);
      for (const cluster::Bytes& part : parts) {
        const auto* ids = reinterpret_cast<const faiss::Index::idx_t*>(part.data());
        found.insert(found.end(), ids, ids + part.size() / sizeof(faiss::Index::idx_t));
      }
      auto recall = [&](int r) -> std::optional<double> {
        if (r > search_k || r > truth.k) return std::nullopt;
        return knn_recall(found, search_k, truth, r);
      };
      p.recall_at_1 = recall(1);
      p.recall_at_10 = recall(10);
      p.recall_at_100 = recall(100);
      p.recall_at_k = recall(k);
    });
    points.push_back(p);
    report(progress, "eval: search (nprobe values)", static_cast<int64_t>(points.size()), values);
  }
  return points;
}

NprobeChoice smallest_nprobe(const std::vector<EvalPoint>& curve, int nlist, double target,
                             const std::function<EvalPoint(int nprobe)>& measure) {
  std::map<int, EvalPoint> known;
  for (const EvalPoint& p : curve)
    if (p.nprobe >= 1 && p.nprobe <= nlist) known.emplace(p.nprobe, p);
  const auto at = [&](int n) -> const EvalPoint& {
    auto it = known.find(n);
    if (it == known.end()) it = known.emplace(n, measure(n)).first;
    return it->second;
  };
  const auto reaches = [&](int n) { return at(n).recall_at_k.value_or(0.0) >= target; };
  int hi = 0;  // the smallest measured nprobe that reaches the target
  for (const auto& [n, p] : known)
    if (p.recall_at_k.value_or(0.0) >= target) {
      hi = n;
      break;
    }
  if (hi == 0) {
    if (!reaches(nlist)) return {false, at(nlist)};
    hi = nlist;
  }
  int lo = 0;  // the largest measured nprobe below hi (which does not reach it); 0: none
  for (const auto& [n, p] : known)
    if (n < hi) lo = n;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (reaches(mid) ? hi : lo) = mid;
  }
  return {true, at(hi)};
}

NprobeChoice recommend_nprobe(cluster::Comm& comm, faiss::Index& index, const float* queries,
                              int64_t nq, const Neighbours& truth, int k,
                              const std::vector<EvalPoint>& curve, double target) {
  // Rank 0 alone scores recall: every rank takes its recall@k, so all bisect alike.
  const auto share = [&comm](std::vector<EvalPoint> points) {
    std::vector<double> recalls;
    for (const EvalPoint& p : points) recalls.push_back(p.recall_at_k.value_or(-1.0));
    const auto* raw = reinterpret_cast<const char*>(recalls.data());
    cluster::Bytes bytes(raw, raw + recalls.size() * sizeof(double));
    comm.broadcast(bytes, 0);
    std::memcpy(recalls.data(), bytes.data(), bytes.size());
    for (size_t i = 0; i < points.size(); ++i)
      points[i].recall_at_k =
          recalls[i] < 0 ? std::nullopt : std::optional<double>(recalls[i]);
    return points;
  };
  const int nlist = static_cast<int>(ivf_of(index, "eval: recommended nprobe").nlist);
  return smallest_nprobe(share(curve), nlist, target, [&](int nprobe) {
    return share(evaluate_index(comm, index, queries, nq, truth, k, {nprobe})).front();
  });
}

}  // namespace sf::stages
