#include "stages/partition/repartition.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cluster/archive.h"
#include "cluster/bytes.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "stages/kmeans.h"
#include "stages/mix64.h"
#include "stages/partition/probes.h"

namespace sf::stages {
namespace {

using cluster::Bytes;

constexpr uint64_t kSampleSalt = 0x7469657273ULL;  // "tiers"
constexpr int64_t kSamplePerList = 128;            // rows re-clustered per new list, at most
constexpr int64_t kRecallQueries = 1000;           // workload queries of the recall check
constexpr int kRecallK = 10;                       // ... and their recall@10

// SplitMix64 (one step): a row's pseudo-random draw from its global id and the seed.
uint64_t mix(uint64_t z) { return mix64(z + 0x9E3779B97F4A7C15ULL); }

// A flat index over `centroids` with the metric of `ivf`, to assign rows to them.
std::unique_ptr<faiss::Index> flat_over(const faiss::IndexIVF& ivf, const float* centroids,
                                        int64_t n) {
  std::unique_ptr<faiss::Index> flat;
  if (ivf.metric_type == faiss::METRIC_INNER_PRODUCT)
    flat = std::make_unique<faiss::IndexFlatIP>(ivf.d);
  else
    flat = std::make_unique<faiss::IndexFlatL2>(ivf.d);
  flat->add(n, centroids);
  return flat;
}

// for_each_batch cut at global multiples of kBlockRows: visit(first, n, x) gets one block (or
// the part of it in `range`) at a time, as add assigns it. Local.
void for_each_block(io::VectorCorpus& corpus, cluster::RowRange range, int64_t batch_rows,
                    const std::function<void(int64_t, int64_t, const float*)>& visit,
                    const ProgressFn& progress, const std::string& step) {
  const int64_t d = corpus.dim();
  for_each_batch(
      corpus, range, batch_rows,
      [&](int64_t first, int64_t count, const float* x) {
        for (int64_t off = 0; off < count;) {
          const int64_t n = std::min(count - off, kBlockRows - (first + off) % kBlockRows);
          visit(first + off, n, x + off * d);
          off += n;
        }
      },
      progress, step);
}

// The true k nearest rows of a few queries among the rows offered so far, with each row's list
// and IVF-space vector. Candidates come from FAISS's flat search (GEMM) with a margin, and are
// ranked by the exact distance (fvec_L2sqr / fvec_inner_product; ties: smaller id), so the
// result does not depend on how the rows were split into batches or ranks.
class NearestRows {
 public:
  NearestRows(int64_t nq, int d, int d_ivf, bool inner_product, std::vector<float> queries)
      : nq_(nq), d_(d), d_ivf_(d_ivf), ip_(inner_product), queries_(std::move(queries)),
        found_(static_cast<size_t>(nq)) {}

  // Rows first .. first + n - 1: x (original space), xt (IVF space), their lists.
  void offer(int64_t first, int64_t n, const float* x, const float* xt,
             const faiss::Index::idx_t* lists) {
    if (nq_ == 0 || n == 0) return;
    std::unique_ptr<faiss::Index> flat;
    if (ip_)
      flat = std::make_unique<faiss::IndexFlatIP>(d_);
    else
      flat = std::make_unique<faiss::IndexFlatL2>(d_);
    flat->add(n, x);
    const int64_t m = std::min<int64_t>(2 * kRecallK, n);
    std::vector<float> dis(static_cast<size_t>(nq_ * m));
    std::vector<faiss::Index::idx_t> rows(static_cast<size_t>(nq_ * m));
    flat->search(nq_, queries_.data(), m, dis.data(), rows.data());
    for (int64_t q = 0; q < nq_; ++q)
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = rows[q * m + r];
        if (i < 0) continue;
        const float* qv = queries_.data() + q * d_;
        Candidate c;
        c.dis = ip_ ? faiss::fvec_inner_product(qv, x + i * d_, d_)
                    : faiss::fvec_L2sqr(qv, x + i * d_, d_);
        c.id = first + i;
        if (!wanted(q, c)) continue;  // before copying the vector
        c.list = lists[i];
        c.vector.assign(xt + i * d_ivf_, xt + (i + 1) * d_ivf_);
        consider(q, std::move(c));
      }
  }

  void pack(Bytes& out) const {
    cluster::ByteWriter w(out);
    for (const auto& f : found_) {
      w.value<int32_t>(static_cast<int32_t>(f.size()));
      for (const Candidate& c : f) {
        w.value(c.dis);
        w.value(c.id);
        w.value(c.list);
        w.array(c.vector.data(), c.vector.size());
      }
    }
  }
  void merge(const Bytes& in) {
    cluster::ByteReader r(in, "partition: nearest rows");
    for (int64_t q = 0; q < nq_; ++q) {
      const int n = r.value<int32_t>();
      for (int i = 0; i < n; ++i) {
        Candidate c;
        c.dis = r.value<float>();
        c.id = r.value<int64_t>();
        c.list = r.value<faiss::Index::idx_t>();
        c.vector.resize(static_cast<size_t>(d_ivf_));
        r.array(c.vector.data(), c.vector.size());
        consider(q, std::move(c));
      }
    }
  }

  // nq x kRecallK: the list of each query's neighbours (-1 where fewer rows exist).
  std::vector<int64_t> lists() const {
    std::vector<int64_t> out(static_cast<size_t>(nq_) * kRecallK, -1);
    for (int64_t q = 0; q < nq_; ++q)
      for (size_t i = 0; i < found_[q].size(); ++i) out[q * kRecallK + i] = found_[q][i].list;
    return out;
  }
  // The lists the neighbours fall in under other centroids (`quantizer`).
  std::vector<int64_t> lists_under(const faiss::Index& quantizer) const {
    std::vector<float> v;
    std::vector<size_t> at;
    for (int64_t q = 0; q < nq_; ++q)
      for (size_t i = 0; i < found_[q].size(); ++i) {
        v.insert(v.end(), found_[q][i].vector.begin(), found_[q][i].vector.end());
        at.push_back(static_cast<size_t>(q * kRecallK) + i);
      }
    std::vector<faiss::Index::idx_t> a(at.size());
    if (!at.empty()) quantizer.assign(static_cast<int64_t>(at.size()), v.data(), a.data());
    std::vector<int64_t> out(static_cast<size_t>(nq_) * kRecallK, -1);
    for (size_t i = 0; i < at.size(); ++i) out[at[i]] = a[i];
    return out;
  }

 private:
  struct Candidate {
    float dis = 0;
    int64_t id = 0;
    faiss::Index::idx_t list = -1;
    std::vector<float> vector;
  };
  bool better(const Candidate& a, const Candidate& b) const {
    if (a.dis != b.dis) return ip_ ? a.dis > b.dis : a.dis < b.dis;
    return a.id < b.id;
  }
  bool wanted(int64_t q, const Candidate& c) const {
    const auto& f = found_[q];
    for (const Candidate& have : f)
      if (have.id == c.id) return false;
    return static_cast<int>(f.size()) < kRecallK || better(c, f.back());
  }
  void consider(int64_t q, Candidate c) {
    if (!wanted(q, c)) return;
    auto& f = found_[q];
    auto at = std::upper_bound(f.begin(), f.end(), c,
                               [&](const Candidate& a, const Candidate& b) { return better(a, b); });
    f.insert(at, std::move(c));
    if (static_cast<int>(f.size()) > kRecallK) f.pop_back();
  }

  int64_t nq_;
  int d_, d_ivf_;
  bool ip_;
  std::vector<float> queries_;
  std::vector<std::vector<Candidate>> found_;
};

// Rank 0's decision after re-clustering the tiers, sent to every rank.
struct NewCentroids {
  bool apply = false;
  int nlist = 0;
  std::vector<float> centroids;  // nlist x d_ivf, when applied
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & apply & nlist & centroids;
  }
};

}  // namespace

RepartitionReport repartition_lists(cluster::Comm& comm, faiss::Index& index,
                                    io::VectorCorpus& corpus, cluster::RowRange range,
                                    const Workload* workload, const PartitionOptions& options,
                                    const ProgressFn& progress) {
  RepartitionReport rep;
  faiss::IndexIVF& ivf = ivf_of(index, "partition");
  const int nlist = static_cast<int>(ivf.nlist);
  const int d_ivf = static_cast<int>(ivf.d);
  const int d = corpus.dim();
  rep.nlist_before = rep.nlist_after = nlist;

  // The scan cost, the same on every rank.
  ScanCost lambda;
  cluster::run_local_phase(comm, "partition: scan cost", [&] {
    if (comm.rank() != 0) return;
    if (options.scan_cost.size() == 2) {
      lambda.a = options.scan_cost[0];
      lambda.b = options.scan_cost[1];
      lambda.source = "config";
      if (!(lambda.b > 0)) throw std::invalid_argument("partition.scan_cost: b must be > 0");
    } else {
      lambda = calibrate_scan_cost(index, options.seed);
    }
  });
  double ab[2] = {comm.rank() == 0 ? lambda.a : 0.0, comm.rank() == 0 ? lambda.b : 0.0};
  comm.allreduce_sum(ab, 2);
  lambda.a = ab[0];
  lambda.b = ab[1];
  rep.scan_cost = lambda;
  const bool have_workload =
      comm.sum(static_cast<int64_t>(comm.rank() == 0 && workload != nullptr)) > 0;
  if (!have_workload) return rep;

  // The queries of the recall check, to every rank.
  std::vector<float> recall_queries;  // rank 0 until the broadcast
  cluster::run_local_phase(comm, "partition: recall queries", [&] {
    if (comm.rank() != 0) return;
    if (workload->queries.size() != static_cast<size_t>(workload->nq) * d)
      throw std::invalid_argument("partition: the workload's dimension differs from the corpus'");
    const int64_t nr = std::min(workload->nq, kRecallQueries);
    recall_queries.assign(workload->queries.begin(), workload->queries.begin() + nr * d);
  });
  recall_queries = cluster::broadcast_as(comm, recall_queries, 0, "partition: recall queries");
  const auto recall_nq = static_cast<int64_t>(recall_queries.size()) / d;
  NearestRows nearest(recall_nq, d, d_ivf, ivf.metric_type == faiss::METRIC_INNER_PRODUCT,
                      std::move(recall_queries));

  // Pass 1: the list of every row of this rank (as add will assign it), the list sizes, and
  // this rank's nearest rows of the recall queries.
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(range.size()));
  std::vector<int64_t> counts(nlist, 0);
  Bytes nearest_here;
  cluster::run_local_phase(comm, "partition: count lists", [&] {
    for_each_block(
        corpus, range, options.batch_rows,
        [&](int64_t first, int64_t n, const float* x) {
          const std::vector<float> xt = to_ivf_space(index, n, x);
          faiss::Index::idx_t* l = labels.data() + (first - range.begin);
          {
            const SingleThreadedBlas one;  // as add assigns a block: one thread
            ivf.quantizer->assign(n, xt.data(), l);
          }
          nearest.offer(first, n, x, xt.data(), l);
        },
        progress, "partition: count lists");
    for (auto l : labels) ++counts[l];
    nearest.pack(nearest_here);
  });
  comm.allreduce_sum(counts.data(), counts.size());
  {
    const std::vector<Bytes> found = comm.gather(nearest_here, 0);
    Bytes().swap(nearest_here);
    cluster::run_local_phase(comm, "partition: nearest rows", [&] {
      for (int r = 1; r < static_cast<int>(found.size()); ++r) nearest.merge(found[r]);
    });
  }

  // Rank 0 plans the tiers.
  std::vector<float> wq;  // rank 0: the workload in IVF space
  std::vector<double> access;
  std::pair<std::vector<int>, std::vector<int>> decision;  // tier of each list, lists after
  const int bound = options.max_nlist > 0 ? options.max_nlist : nlist;
  cluster::run_local_phase(comm, "partition: plan tiers", [&] {
    if (comm.rank() != 0) return;
    wq = to_ivf_space(index, workload->nq, workload->queries.data());
    access = access_frequency(*ivf.quantizer, wq.data(), workload->nq, workload->weights,
                              options.nprobe);
    TierPlan tp = plan_tiers(access, counts, options.tiers, bound, options.min_list_size);
    decision = {std::move(tp.tier_of_list), std::move(tp.lists_after)};
  });
  decision = cluster::broadcast_as(comm, decision, 0, "partition: tier plan");
  TierPlan tiers;
  {
    if (decision.first.size() != static_cast<size_t>(nlist))
      throw std::logic_error("partition: the tier plan does not cover every list");
    tiers.tier_of_list = std::move(decision.first);
    tiers.lists_after = std::move(decision.second);
    const int used = static_cast<int>(tiers.lists_after.size());
    tiers.rows.assign(used, 0);
    tiers.lists_before.assign(used, 0);
    tiers.access.assign(used, 0.0);
    for (int j = 0; j < nlist; ++j) {
      tiers.rows[tiers.tier_of_list[j]] += counts[j];
      tiers.lists_before[tiers.tier_of_list[j]] += 1;
      if (!access.empty()) tiers.access[tiers.tier_of_list[j]] += access[j];
    }
  }
  const int used = static_cast<int>(tiers.lists_after.size());
  std::vector<char> resized(used, 0);
  bool any = false;
  for (int t = 0; t < used; ++t) any |= resized[t] = tiers.lists_after[t] != tiers.lists_before[t];
  rep.tiers = tiers;
  const double before_cost = [&] {
    const auto c = expected_costs(access, counts, lambda);
    return std::accumulate(c.begin(), c.end(), 0.0);
  }();
  rep.cost_before = rep.cost_after = before_cost;
  if (!any) return rep;

  // Pass 2: a sample of the rows of each re-sized tier, chosen by global id and seed.
  std::vector<int64_t> cap(used);
  for (int t = 0; t < used; ++t) cap[t] = kSamplePerList * tiers.lists_after[t];
  Bytes mine;
  cluster::run_local_phase(comm, "partition: sample tiers", [&] {
    for_each_block(
        corpus, range, options.batch_rows,
        [&](int64_t first, int64_t n, const float* x) {
          std::vector<float> xt;
          for (int64_t i = 0; i < n; ++i) {
            const int64_t g = first + i;
            const int t = tiers.tier_of_list[labels[g - range.begin]];
            if (!resized[t]) continue;
            const int64_t rows_t = tiers.rows[t];
            if (rows_t > cap[t] &&
                static_cast<int64_t>(mix(static_cast<uint64_t>(g) ^ options.seed ^ kSampleSalt) %
                                     static_cast<uint64_t>(rows_t)) >= cap[t])
              continue;
            if (xt.empty()) xt = to_ivf_space(index, n, x);
            cluster::ByteWriter out(mine);
            out.value<int32_t>(t);
            out.array(xt.data() + i * d_ivf, static_cast<size_t>(d_ivf));
          }
        },
        progress, "partition: sample tiers");
  });
  const std::vector<Bytes> parts = comm.gather(mine, 0);
  mine.clear();

  // Rank 0 re-clusters each re-sized tier and checks the new lists lower the expected cost.
  NewCentroids result;
  cluster::run_local_phase(comm, "partition: re-cluster tiers", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::vector<float>> rows(used);
    for (const Bytes& part : parts) {  // rank order: ascending global ids
      cluster::ByteReader in(part, "partition: tier sample");
      while (!in.done()) {
        const int t = in.value<int32_t>();
        std::vector<float>& r = rows.at(t);
        r.resize(r.size() + d_ivf);
        in.array(r.data() + r.size() - d_ivf, static_cast<size_t>(d_ivf));
      }
    }
    std::vector<float> centroids(static_cast<size_t>(nlist) * d_ivf);
    ivf.quantizer->reconstruct_n(0, nlist, centroids.data());
    // Unchanged tiers keep their centroids (in list order), re-clustered tiers follow.
    std::vector<float> next;
    for (int j = 0; j < nlist; ++j)
      if (!resized[tiers.tier_of_list[j]])
        next.insert(next.end(), centroids.begin() + static_cast<size_t>(j) * d_ivf,
                    centroids.begin() + static_cast<size_t>(j + 1) * d_ivf);
    auto serial = cluster::make_serial_comm();
    for (int t = 0; t < used; ++t) {
      if (!resized[t]) continue;
      const int64_t n = static_cast<int64_t>(rows[t].size() / d_ivf);
      KMeansOptions km;
      km.k = static_cast<int>(std::min<int64_t>(tiers.lists_after[t], n));
      km.iterations = options.kmeans_iterations;
      km.seed = options.seed + static_cast<uint64_t>(t);
      km.inner_product = ivf.metric_type == faiss::METRIC_INNER_PRODUCT;
      if (km.k < 1) continue;
      const KMeansResult r = distributed_kmeans(*serial, rows[t].data(), n, 0, n, d_ivf, km);
      next.insert(next.end(), r.centroids.begin(), r.centroids.end());
      rep.splits += std::max(0, km.k - tiers.lists_before[t]);
      rep.merges += std::max(0, tiers.lists_before[t] - km.k);
    }
    const int nlist_next = static_cast<int>(next.size() / d_ivf);

    // Estimated sizes: unchanged lists keep theirs; each sampled row stands for
    // rows_t / sample_t rows of its tier and goes to its nearest new centroid.
    std::vector<double> est(nlist_next, 0.0);
    std::unique_ptr<faiss::Index> next_flat = flat_over(ivf, next.data(), nlist_next);
    for (int j = 0, k = 0; j < nlist; ++j)
      if (!resized[tiers.tier_of_list[j]]) est[k++] = static_cast<double>(counts[j]);
    for (int t = 0; t < used; ++t) {
      const int64_t n = static_cast<int64_t>(rows[t].size() / d_ivf);
      if (!resized[t] || n == 0) continue;
      std::vector<faiss::Index::idx_t> a(static_cast<size_t>(n));
      {
        const SingleThreadedBlas one;  // the same estimate for any thread count
        next_flat->assign(n, rows[t].data(), a.data());
      }
      const double scale = static_cast<double>(tiers.rows[t]) / static_cast<double>(n);
      for (auto v : a) est[v] += scale;
    }
    std::vector<int64_t> sizes_next(nlist_next);
    for (int c = 0; c < nlist_next; ++c) sizes_next[c] = std::llround(est[c]);
    // Both layouts at equal recall on the recall queries: the k-means lists at options.nprobe
    // set the recall, the new lists need whatever nprobe reaches it.
    const int64_t nr = std::min(workload->nq, kRecallQueries);
    const std::vector<float> wr =
        workload->weights.empty()
            ? std::vector<float>{}
            : std::vector<float>(workload->weights.begin(), workload->weights.begin() + nr);
    const int p = std::max(1, std::min(options.nprobe, nlist));
    const int reach = std::max(4 * p, p + 64);
    const ProbeCurve old_curve = probe_curve(*ivf.quantizer, wq.data(), nr, wr, nearest.lists(),
                                             kRecallK, counts, lambda, p);
    const ProbeCurve new_curve =
        probe_curve(*next_flat, wq.data(), nr, wr, nearest.lists_under(*next_flat), kRecallK,
                    sizes_next, lambda, reach);
    rep.recall_queries = static_cast<int>(nr);
    rep.recall_target = old_curve.recall.back();
    rep.cost_before = old_curve.cost.back();
    const double at_recall = cost_at_recall(new_curve, rep.recall_target, &rep.nprobe_after);
    const bool reached = std::isfinite(at_recall);  // else: not within `reach` probes
    rep.cost_after = reached ? at_recall : new_curve.cost.back();
    result.apply = reached && rep.cost_after < rep.cost_before;
    if (result.apply) result.centroids = std::move(next);
    result.nlist = nlist_next;
  });
  result = cluster::broadcast_as(comm, result, 0, "partition: new centroids");
  const bool apply = result.apply;
  const int nlist_next = result.nlist;
  rep.applied = apply;
  if (!apply) {
    rep.splits = rep.merges = 0;
    rep.tiers.lists_after = rep.tiers.lists_before;
    return rep;
  }
  cluster::run_local_phase(comm, "partition: new centroids",
                           [&] { set_coarse_centroids(index, result.centroids, nlist_next); });
  rep.nlist_after = nlist_next;
  return rep;
}

}  // namespace sf::stages
