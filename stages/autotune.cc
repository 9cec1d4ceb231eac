#include "stages/autotune.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "io/index_file.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/eval.h"
#include "stages/ivf_index.h"
#include "stages/kmeans.h"
#include "stages/train.h"

namespace sf::stages {
namespace {

constexpr uint64_t kTuneSampleSalt = 0x74756e652d726f77ULL;  // "tune-row"
constexpr uint64_t kTuneQuerySalt = 0x74756e652d717279ULL;   // "tune-qry"
constexpr int64_t kQueryBlock = 64;  // queries per block of the shared work
constexpr double kPlateauGain = 0.002;  // recall gained by doubling nprobe that ends a search
// Multiply-adds of one k-means iteration (rows x nlist x d) under which auto_nlists also tries
// lists of 4-20 rows: about a second on one core.
constexpr double kCheapKMeans = 1e9;
// OPQ iterations of a tuning rotation (FAISS's default, which the build trains, is 50): a
// little less aligned, so the OPQ candidates' recall is a little pessimistic, at a fifth of
// the cost (OPQ49 at d 784 on 8,192 rows, python3-faiss on one core: 45 s; 99 s at 25
// iterations).
constexpr int kTuneOpqIterations = 10;

using Bytes = cluster::Bytes;

template <class T>
Bytes to_bytes(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const char*>(v.data());
  return Bytes(p, p + v.size() * sizeof(T));
}
template <class T>
void append_from(const Bytes& b, std::vector<T>& out) {
  const size_t n = b.size() / sizeof(T);
  out.resize(out.size() + n);
  std::memcpy(out.data() + out.size() - n, b.data(), b.size());
}

// Collective: work(b) for every block b in [0, blocks), block b on rank b % size (its blocks
// spread over its threads, each whole on one thread with single-threaded BLAS); every rank gets
// every block's bytes, in block order. An exception on any rank is agreed (PhaseError).
std::vector<Bytes> spread_blocks(cluster::Comm& comm, const std::string& phase, int64_t blocks,
                                 const std::function<Bytes(int64_t)>& work) {
  std::vector<int64_t> mine;
  for (int64_t b = comm.rank(); b < blocks; b += comm.size()) mine.push_back(b);
  std::vector<Bytes> done(mine.size());
  cluster::run_local_phase(comm, phase, [&] {
    parallel_blocks(static_cast<int64_t>(mine.size()),
                    [&](int64_t i, int) { done[static_cast<size_t>(i)] = work(mine[static_cast<size_t>(i)]); });
  });
  // One message per rank: [size of each block's bytes] then the bytes.
  Bytes packed;
  for (const Bytes& d : done) {
    const uint64_t n = d.size();
    packed.insert(packed.end(), reinterpret_cast<const char*>(&n), reinterpret_cast<const char*>(&n) + sizeof(n));
    packed.insert(packed.end(), d.begin(), d.end());
  }
  const std::vector<Bytes> all = comm.allgather(packed);
  std::vector<Bytes> out(static_cast<size_t>(blocks));
  for (int r = 0; r < comm.size(); ++r) {
    size_t at = 0;
    for (int64_t b = r; b < blocks; b += comm.size()) {
      uint64_t n = 0;
      std::memcpy(&n, all[r].data() + at, sizeof(n));
      at += sizeof(n);
      out[static_cast<size_t>(b)].assign(all[r].begin() + static_cast<std::ptrdiff_t>(at),
                                         all[r].begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    }
  }
  return out;
}

// What a candidate needs to be measured: the tuning sample, its exact neighbours, and per
// coarse quantizer the rows' and the queries' lists.
struct Sample {
  int d = 0, k = 0;
  int64_t db = 0, nq = 0;
  std::vector<float> rows;     // db x d
  std::vector<float> queries;  // nq x d
  Neighbours truth;            // nq x k, ids in [0, db)
};
struct SampleLists {
  const CoarseQuantizer* quantizer = nullptr;
  int probes = 0;                                  // min(nlist, options.max_nprobe)
  std::vector<faiss::Index::idx_t> list_of;        // db: each row's list
  std::vector<faiss::Index::idx_t> near;           // nq x probes: each query's nearest lists
  std::vector<float> near_dis;                     // nq x probes
};

// The rows of x (n x d) through `opq`, or x itself when there is none; `keep` holds them.
const float* rotated(const faiss::OPQMatrix* opq, int64_t n, const float* x,
                     std::vector<float>& keep) {
  if (opq == nullptr) return x;
  keep.resize(static_cast<size_t>(n) * opq->d_out);
  opq->apply_noalloc(n, x, keep.data());
  return keep.data();
}

// Candidate `factory` on the sample: trained, filled, searched. Single-threaded (the caller
// runs it on one thread of a parallel_blocks team). An OPQ candidate takes `rotation` (the
// trained matrix of its m, d x d): the IVF behind it works in the rotated space, with the
// quantizer's centroids rotated. A rotation keeps distances, so the rows' and the queries'
// lists are the sample's (the build trains its k-means on rotated rows: the same clustering,
// turned).
TuneCandidate measure(const std::string& factory, const Sample& s, const SampleLists& lists,
                      const TuneOptions& options, int64_t corpus_rows,
                      const std::vector<float>* rotation) {
  const auto start = std::chrono::steady_clock::now();
  TuneCandidate c;
  c.factory = factory;
  c.measured = true;
  std::unique_ptr<faiss::Index> index = make_ivf_index(s.d, factory, options.inner_product);
  faiss::IndexIVF& ivf = ivf_of(*index, "tune");
  faiss::OPQMatrix* opq = find_opq(index.get());
  if (opq != nullptr) {
    if (rotation == nullptr) throw std::logic_error("tune: " + factory + " without its rotation");
    opq->A = *rotation;
    opq->is_trained = true;
  }
  std::vector<float> turned;  // rotated rows of the step at hand
  fill_quantizer(ivf, lists.quantizer->nlist,
                 rotated(opq, lists.quantizer->nlist, lists.quantizer->centroids.data(), turned));
  const int64_t train_n = std::min(s.db, options.codebook_rows);
  // FAISS's small-sample warning off (train_index says it once for the build itself).
  // Fewer k-means iterations than the build's 25: the tuning's PQ codebooks are a little worse
  // (its recall a little pessimistic) at 40 % of the cost, which is most of the tuning's.
  if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(&ivf)) {
    pq->pq.cp.min_points_per_centroid = 0;
    pq->pq.cp.niter = 10;
  }
  ivf.train(train_n, rotated(opq, train_n, s.rows.data(), turned));  // only the codes train
  // In blocks: FAISS's PQ encoder with 16 dimensions per sub-quantizer holds a distance
  // table of rows x 256 x m floats (3 GB for 59,000 rows of PQ49 at d 784).
  for (int64_t first = 0; first < s.db; first += kBlockRows) {
    const int64_t n = std::min(kBlockRows, s.db - first);
    ivf.add_core(n, rotated(opq, n, s.rows.data() + first * s.d, turned), nullptr,
                 lists.list_of.data() + first);
  }
  std::vector<float> turned_queries;
  const float* queries = rotated(opq, s.nq, s.queries.data(), turned_queries);

  const int k = s.k;
  std::vector<faiss::Index::idx_t> assign, labels(static_cast<size_t>(s.nq) * k);
  std::vector<float> dis, distances(static_cast<size_t>(s.nq) * k);
  // Recall and codes scanned per query at nprobe p (memoised).
  const int probes = lists.probes;
  std::vector<double> recall_at(static_cast<size_t>(probes) + 1, -1), ndis_at(recall_at.size());
  std::vector<double> seconds_at(recall_at.size());
  auto at = [&](int p) {
    if (recall_at[p] >= 0) return recall_at[p];
    assign.resize(static_cast<size_t>(s.nq) * p);
    dis.resize(assign.size());
    for (int64_t q = 0; q < s.nq; ++q)
      for (int j = 0; j < p; ++j) {
        assign[q * p + j] = lists.near[q * probes + j];
        dis[q * p + j] = lists.near_dis[q * probes + j];
      }
    ivf.nprobe = static_cast<size_t>(p);
    faiss::IndexIVFStats stats;
    const auto t0 = std::chrono::steady_clock::now();
    ivf.search_preassigned(s.nq, queries, k, assign.data(), dis.data(), distances.data(),
                           labels.data(), false, nullptr, &stats);
    seconds_at[p] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    recall_at[p] = knn_recall(labels, k, s.truth, k);
    ndis_at[p] = static_cast<double>(stats.ndis) / static_cast<double>(s.nq);
    return recall_at[p];
  };
  // Doubling, then bisection between the last miss and the first hit.
  // Whether the recall at p, p/2 and p/4 says the target is out of reach: it gained less than
  // kPlateauGain by the last doubling, or the gains shrink so fast that the doublings left
  // (to probes) would not close the gap if each gained the previous one's share again.
  auto gives_up = [&](int p) {
    if (p < 8) return false;
    const double g2 = at(p) - at(p / 2), g1 = at(p / 2) - at(p / 4);
    if (g2 < kPlateauGain) return true;
    if (g1 <= 0 || g2 >= g1) return false;
    const double ratio = g2 / g1;
    return g2 * ratio / (1 - ratio) < options.target_recall - at(p);
  };
  // A code whose recall stops rising before the target (its quantization error, not the
  // lists probed, limits it) is given up at the plateau: the scans at large nprobe are most of
  // the tuning's cost otherwise.
  int lo = 0, hi = 0;
  for (int p = 1;; p = std::min(2 * p, probes)) {
    if (at(p) >= options.target_recall) {
      hi = p;
      break;
    }
    lo = p;
    if (p == probes || gives_up(p)) break;
  }
  if (hi > 0) {
    while (hi - lo > 1) {
      const int mid = lo + (hi - lo) / 2;
      (at(mid) >= options.target_recall ? hi : lo) = mid;
    }
  }
  const int p = hi > 0 ? hi : lo;
  c.nprobe = hi;
  c.tried_nprobe = p;
  c.recall = recall_at[p];
  c.codes_per_query = ndis_at[p] * static_cast<double>(corpus_rows) / static_cast<double>(s.db);
  c.cost = modelled_cost(*index, c.codes_per_query, p);
  c.sample_qps = seconds_at[p] > 0 ? static_cast<double>(s.nq) / seconds_at[p] : 0;
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

// What the lists of a quantizer allow any code: the smallest nprobe whose probed lists hold at
// least the target's share of the queries' true neighbours (the recall of an uncompressed
// IVF, ties aside), and the codes per query there (scaled to the corpus by `scale`); nprobe 0
// when even every list probed (lists.probes) falls short, and recall the most they reach.
struct Ceiling {
  int nprobe = 0;
  double recall = 0;
  double codes_per_query = 0;
};
Ceiling lists_ceiling(const Sample& s, const SampleLists& l, double target, double scale) {
  const auto nlist = static_cast<size_t>(l.quantizer->nlist);
  std::vector<int64_t> found(static_cast<size_t>(l.probes) + 1, 0);  // by the rank probing them
  std::vector<int> rank_of(nlist, -1);
  for (int64_t q = 0; q < s.nq; ++q) {
    for (int j = 0; j < l.probes; ++j) rank_of[static_cast<size_t>(l.near[q * l.probes + j])] = j;
    for (int j = 0; j < s.k; ++j) {
      const faiss::Index::idx_t id = s.truth.ids[static_cast<size_t>(q * s.k + j)];
      const int r = id < 0 ? -1 : rank_of[static_cast<size_t>(l.list_of[static_cast<size_t>(id)])];
      if (r >= 0) ++found[static_cast<size_t>(r) + 1];
    }
    for (int j = 0; j < l.probes; ++j) rank_of[static_cast<size_t>(l.near[q * l.probes + j])] = -1;
  }
  Ceiling c;
  const double all = static_cast<double>(s.nq) * s.k;
  int64_t sum = 0;
  for (int p = 1; p <= l.probes; ++p) {
    sum += found[static_cast<size_t>(p)];
    c.recall = static_cast<double>(sum) / all;
    if (c.recall >= target) {
      c.nprobe = p;
      break;
    }
  }
  if (c.nprobe == 0) return c;
  std::vector<int64_t> sizes(nlist, 0);
  for (faiss::Index::idx_t list : l.list_of) ++sizes[static_cast<size_t>(list)];
  double codes = 0;
  for (int64_t q = 0; q < s.nq; ++q)
    for (int j = 0; j < c.nprobe; ++j)
      codes += static_cast<double>(sizes[static_cast<size_t>(l.near[q * l.probes + j])]);
  c.codes_per_query = codes / static_cast<double>(s.nq) * scale;
  return c;
}

nlohmann::json candidate_json(const TuneCandidate& c) {
  return {{"factory", c.factory}, {"nlist", c.nlist}, {"index_bytes", c.index_bytes}, {"fits", c.fits},
          {"measured", c.measured}, {"nprobe", c.nprobe}, {"tried_nprobe", c.tried_nprobe}, {"recall", c.recall},
          {"codes_per_query", c.codes_per_query}, {"cost_ns", c.cost},
          {"sample_qps", c.sample_qps}, {"seconds", c.seconds}};
}

TuneCandidate candidate_from_json(const nlohmann::json& j) {
  TuneCandidate c;
  c.factory = j.at("factory").get<std::string>();
  c.nlist = j.at("nlist").get<int>();
  c.index_bytes = j.at("index_bytes").get<uint64_t>();
  c.fits = j.at("fits").get<bool>();
  c.measured = j.at("measured").get<bool>();
  c.nprobe = j.at("nprobe").get<int>();
  c.tried_nprobe = j.at("tried_nprobe").get<int>();
  c.recall = j.at("recall").get<double>();
  c.codes_per_query = j.at("codes_per_query").get<double>();
  c.cost = j.at("cost_ns").get<double>();
  c.sample_qps = j.at("sample_qps").get<double>();
  c.seconds = j.at("seconds").get<double>();
  return c;
}

}  // namespace

int auto_nlist(int64_t rows) {
  const double target = 4 * std::sqrt(static_cast<double>(std::max<int64_t>(rows, 1)));
  int nlist = 1;
  while (nlist * 2 <= target * std::sqrt(2.0)) nlist *= 2;  // nearest power of two (log scale)
  while (nlist > 1 && static_cast<int64_t>(nlist) * 39 > rows) nlist /= 2;
  return nlist;
}

std::vector<int> auto_nlists(int64_t rows, int d) {
  const int n = auto_nlist(rows);
  std::vector<int> out = {n};
  for (int64_t m = 2 * static_cast<int64_t>(n); m <= 8 * static_cast<int64_t>(n); m *= 2) {
    // At least 20 rows per list; or, where a k-means iteration is cheap, at least 4.
    const bool cheap = static_cast<double>(rows) * static_cast<double>(m) * d <= kCheapKMeans;
    if (m * 20 <= rows || (m * 4 <= rows && cheap)) out.push_back(static_cast<int>(m));
  }
  return out;
}

int choose_candidate(const std::vector<TuneCandidate>& candidates) {
  int chosen = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const TuneCandidate& c = candidates[i];
    if (!c.measured || c.nprobe == 0) continue;
    if (chosen < 0) {
      chosen = static_cast<int>(i);
      continue;
    }
    const TuneCandidate& best = candidates[static_cast<size_t>(chosen)];
    if (c.cost < best.cost || (c.cost == best.cost && c.index_bytes < best.index_bytes))
      chosen = static_cast<int>(i);
  }
  return chosen;
}

std::vector<std::string> candidate_codes(int d) {
  std::vector<std::string> codes = {"Flat", "SQ8", "SQ6", "SQ4"};
  for (int s : {4, 8, 16})
    if (d % s == 0) codes.push_back("PQ" + std::to_string(d / s) + "np");  // no polysemous
  return codes;
}

uint64_t estimated_index_bytes(const faiss::Index& index, int64_t rows) {
  const faiss::IndexIVF& ivf = ivf_of(const_cast<faiss::Index&>(index), "estimated_index_bytes");
  uint64_t bytes = io::serialize_index(index).size();
  // What training adds to an untrained rotation: its matrix (d_out x d_in floats).
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index))
    for (const faiss::VectorTransform* vt : pt->chain)
      if (const auto* lt = dynamic_cast<const faiss::LinearTransform*>(vt); lt != nullptr && lt->A.empty())
        bytes += sizeof(float) * static_cast<uint64_t>(lt->d_in) * static_cast<uint64_t>(lt->d_out);
  if (const auto* sq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(&ivf))
    if (!sq->is_trained) bytes += 2 * sizeof(float) * static_cast<uint64_t>(sq->d);
  // FAISS writes empty lists in its sparse form ("sprs": no sizes); the merge writes the full
  // one (a size per list).
  bytes += sizeof(uint64_t) * static_cast<uint64_t>(ivf.nlist);
  return bytes + static_cast<uint64_t>(rows) * (ivf.code_size + sizeof(faiss::Index::idx_t));
}

double modelled_cost(const faiss::Index& index, double codes_per_query, int nprobe) {
  // Single-thread ns, measured with Debian's FAISS 1.7.3 on Fashion-MNIST (d 784; python3-faiss,
  // CPU time, a quiet machine: bench/RESULTS.md "Automatic index choice"). Debian's build has
  // no SIMD scalar-quantizer kernels: an SQ code costs more to scan than a float one. At d 128
  // (SIFT) Flat is cheaper still (0.55 ns per dimension), which orders the codes the same way.
  const faiss::IndexIVF& ivf = ivf_of(const_cast<faiss::Index&>(index), "modelled_cost");
  const double d = ivf.d;
  double per_code = 0.9 * d;                                   // Flat: d floats
  // The coarse quantizer (BLAS over a batch of queries; 0.19 ns per centroid dimension at
  // IVF2048 on Fashion-MNIST).
  double per_query = 0.2 * d * static_cast<double>(ivf.nlist);
  double per_probe = 0;
  if (const auto* sq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(&ivf)) {
    switch (sq->sq.qtype) {
      case faiss::ScalarQuantizer::QT_8bit: per_code = 1.35 * d; break;
      case faiss::ScalarQuantizer::QT_6bit: per_code = 2.35 * d; break;
      case faiss::ScalarQuantizer::QT_4bit: per_code = 2.0 * d; break;
      default: per_code = 2.0 * d;
    }
  } else if (const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(&ivf)) {
    const double m = static_cast<double>(pq->pq.M), ksub = static_cast<double>(pq->pq.ksub);
    const double dsub = static_cast<double>(pq->pq.dsub);
    per_code = 0.6 * m;                           // m table lookups
    per_probe = 0.85 * m * ksub;                  // the list's table (precomputed terms)
    per_query += (3.5 + 0.3 * dsub) * m * ksub;  // the query's inner products with the codebooks
  }
  // A rotation (OPQ): a d_out x d_in matrix product per query, the same GEMM over a batch of
  // queries as the coarse quantizer's, charged alike.
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index))
    for (const faiss::VectorTransform* vt : pt->chain)
      per_query += 0.2 * static_cast<double>(vt->d_in) * static_cast<double>(vt->d_out);
  return per_query + per_probe * nprobe + per_code * codes_per_query;
}

int opq_m(const std::string& factory) {
  if (factory.rfind("OPQ", 0) != 0) return 0;
  return std::atoi(factory.c_str() + 3);
}

std::vector<TuneCandidate> tune_candidates(int d, int nlist, int64_t rows,
                                           const TuneOptions& options) {
  // The sizes do not depend on the centroids' values: a quantizer of zeros serializes alike.
  const std::vector<float> zeros(static_cast<size_t>(nlist) * d);
  const std::string ivf = "IVF" + std::to_string(nlist) + ",";
  std::vector<std::string> factories;
  for (const std::string& code : candidate_codes(d)) factories.push_back(ivf + code);
  // Each PQ again behind an OPQ rotation of its m ("PQ98np" -> "OPQ98,IVFn,PQ98np").
  for (const std::string& code : candidate_codes(d))
    if (code.rfind("PQ", 0) == 0) factories.push_back("O" + code.substr(0, code.size() - 2) + "," + ivf + code);
  std::vector<TuneCandidate> out;
  for (const std::string& factory : factories) {
    TuneCandidate c;
    c.factory = factory;
    c.nlist = nlist;
    std::unique_ptr<faiss::Index> probe = make_ivf_index(d, c.factory, options.inner_product);
    fill_quantizer(ivf_of(*probe, "tune"), nlist, zeros.data());
    c.index_bytes = estimated_index_bytes(*probe, rows);
    c.fits = options.budget_bytes == 0 || c.index_bytes <= options.budget_bytes;
    out.push_back(c);
  }
  return out;
}

TuneResult tune_index(cluster::Comm& comm, io::VectorCorpus& corpus, cluster::RowRange range,
                      const std::vector<CoarseQuantizer>& quantizers, const TuneOptions& options,
                      const ProgressFn& progress) {
  TuneResult result;
  const int d = corpus.dim();
  const int64_t rows = corpus.rows();
  result.corpus_rows = rows;

  std::vector<size_t> quantizer_of;  // per candidate, its quantizer in `quantizers`
  for (size_t q = 0; q < quantizers.size(); ++q)
    for (const TuneCandidate& c : tune_candidates(d, quantizers[q].nlist, rows, options)) {
      result.candidates.push_back(c);
      quantizer_of.push_back(q);
    }
  // First every code that fits but the OPQ ones: what they reach decides which rotations can
  // pay (below).
  std::vector<int64_t> measured;
  for (size_t i = 0; i < result.candidates.size(); ++i)
    if (result.candidates[i].fits && opq_m(result.candidates[i].factory) == 0)
      measured.push_back(static_cast<int64_t>(i));
  if (std::none_of(result.candidates.begin(), result.candidates.end(),
                   [](const TuneCandidate& c) { return c.fits; }))
    return result;

  // The tuning sample: nq held-out queries and db database rows, by the seed.
  Sample s;
  s.d = d;
  s.nq = std::min<int64_t>(options.tune_queries, std::max<int64_t>(1, rows / 10));
  s.db = std::min<int64_t>(options.tune_rows, rows - s.nq);
  s.k = static_cast<int>(std::min<int64_t>(options.k, s.db));
  result.db_rows = s.db;
  result.queries = s.nq;
  const std::vector<int64_t> ids = choose_sample(rows, s.db + s.nq, options.seed ^ kTuneSampleSalt);
  const std::vector<int64_t> query_pos = choose_sample(s.db + s.nq, s.nq, options.seed ^ kTuneQuerySalt);
  std::vector<float> mine;
  cluster::run_local_phase(comm, "tune: read sample", [&] {
    const auto lo = std::lower_bound(ids.begin(), ids.end(), range.begin);
    const auto hi = std::lower_bound(ids.begin(), ids.end(), range.end);
    const std::vector<int64_t> my_ids(lo, hi);
    mine.resize(my_ids.size() * static_cast<size_t>(d));
    read_selected_rows(corpus, my_ids, mine.data());
  });
  std::vector<float> all;  // (db + nq) x d, in id order (the ranks' ranges are in order)
  for (const Bytes& part : comm.allgather(to_bytes(mine))) append_from(part, all);
  std::vector<float>().swap(mine);
  // Split in place: the queries aside, the database rows moved down (one copy of the sample).
  s.queries.reserve(static_cast<size_t>(s.nq) * d);
  for (int64_t i = 0, q = 0, to = 0; i < s.db + s.nq; ++i) {
    const float* row = all.data() + i * d;
    if (q < s.nq && query_pos[static_cast<size_t>(q)] == i) {
      s.queries.insert(s.queries.end(), row, row + d);
      ++q;
    } else {
      if (to != i) std::memmove(all.data() + to * d, row, sizeof(float) * d);
      ++to;
    }
  }
  all.resize(static_cast<size_t>(s.db) * d);
  s.rows = std::move(all);
  if (progress) progress("tune: sample", s.db + s.nq, s.db + s.nq);

  // Shared work in fixed blocks: the exact top-k, and per quantizer the rows' lists and the
  // queries' nearest lists.
  const int64_t query_blocks = (s.nq + kQueryBlock - 1) / kQueryBlock;
  {
    // Exact top-k of each query block over the database rows (FAISS cuts the rows into blocks
    // of its own fixed size: the same GEMMs for any block of queries).
    std::vector<faiss::Index::idx_t> truth;
    for (const Bytes& b : spread_blocks(comm, "tune: exact neighbours", query_blocks, [&](int64_t b) {
           const int64_t first = b * kQueryBlock, n = std::min(kQueryBlock, s.nq - first);
           std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(n) * s.k);
           std::vector<float> dis(labels.size());
           const float* x = s.queries.data() + first * d;
           if (options.inner_product)
             faiss::knn_inner_product(x, s.rows.data(), d, n, s.db, s.k, dis.data(), labels.data());
           else
             faiss::knn_L2sqr(x, s.rows.data(), d, n, s.db, s.k, dis.data(), labels.data());
           return to_bytes(labels);
         }))
      append_from(b, truth);
    s.truth.nq = s.nq;
    s.truth.k = s.k;
    s.truth.ids.assign(truth.begin(), truth.end());
  }
  if (progress) progress("tune: ground truth", s.nq, s.nq);
  std::vector<SampleLists> lists(quantizers.size());
  for (size_t q = 0; q < quantizers.size(); ++q) {
    SampleLists& l = lists[q];
    l.quantizer = &quantizers[q];
    l.probes = std::min(l.quantizer->nlist, options.max_nprobe);
    std::unique_ptr<faiss::Index> flat =
        make_ivf_index(d, "IVF" + std::to_string(l.quantizer->nlist) + ",Flat", options.inner_product);
    faiss::IndexIVF& flat_ivf = ivf_of(*flat, "tune");
    fill_quantizer(flat_ivf, l.quantizer->nlist, l.quantizer->centroids.data());
    const faiss::Index& quantizer = *flat_ivf.quantizer;
    const int64_t row_blocks = (s.db + kBlockRows - 1) / kBlockRows;
    for (const Bytes& b : spread_blocks(comm, "tune: assign rows", row_blocks, [&](int64_t b) {
           const int64_t first = b * kBlockRows, n = std::min(kBlockRows, s.db - first);
           std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(n));
           std::vector<float> dis(static_cast<size_t>(n));
           quantizer.search(n, s.rows.data() + first * d, 1, dis.data(), labels.data());
           return to_bytes(labels);
         }))
      append_from(b, l.list_of);
    for (const Bytes& b : spread_blocks(comm, "tune: queries' lists", query_blocks, [&](int64_t b) {
           const int64_t first = b * kQueryBlock, n = std::min(kQueryBlock, s.nq - first);
           std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(n) * l.probes);
           std::vector<float> dis(labels.size());
           quantizer.search(n, s.queries.data() + first * d, l.probes, dis.data(), labels.data());
           Bytes out = to_bytes(labels);
           const Bytes more = to_bytes(dis);
           out.insert(out.end(), more.begin(), more.end());
           return out;
         })) {
      const size_t half =
          b.size() / (sizeof(faiss::Index::idx_t) + sizeof(float)) * sizeof(faiss::Index::idx_t);
      append_from(Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(half)), l.near);
      append_from(Bytes(b.begin() + static_cast<std::ptrdiff_t>(half), b.end()), l.near_dis);
    }
  }

  // The candidates, each whole on one thread of one rank.
  std::map<int, std::vector<float>> rotations;  // OPQ m -> its trained d x d matrix
  const auto measure_all = [&](const std::vector<int64_t>& which) {
    const std::vector<Bytes> results =
        spread_blocks(comm, "tune: candidates", static_cast<int64_t>(which.size()), [&](int64_t i) {
          const auto at = static_cast<size_t>(which[static_cast<size_t>(i)]);
          const TuneCandidate& c = result.candidates[at];
          const auto rotation = rotations.find(opq_m(c.factory));
          TuneCandidate m = measure(c.factory, s, lists[quantizer_of[at]], options, rows,
                                    rotation == rotations.end() ? nullptr : &rotation->second);
          m.index_bytes = c.index_bytes;
          m.nlist = c.nlist;
          const std::string text = candidate_json(m).dump();
          return Bytes(text.begin(), text.end());
        });
    for (size_t i = 0; i < which.size(); ++i)
      result.candidates[static_cast<size_t>(which[i])] =
          candidate_from_json(nlohmann::json::parse(std::string(results[i].begin(), results[i].end())));
  };
  measure_all(measured);
  if (progress) progress("tune: candidates", static_cast<int64_t>(measured.size()), static_cast<int64_t>(measured.size()));

  // OPQ where it can pay. A rotation buys recall per list probed, never fewer codes per list,
  // and costs a matrix product per query. No code finds a neighbour in a list it does not
  // probe: the lists' own ceiling (the recall of the uncompressed IVF, lists_ceiling) says the
  // least nprobe any code needs. An OPQ candidate is measured only when its cost there is below
  // the cost of the choice so far, or nothing reached the target; and never when the lists
  // cannot reach the target at all. Its rotation (one per m, shared by the nlists) trains
  // first, as shared work.
  const int first_choice = choose_candidate(result.candidates);
  std::vector<int64_t> rotated_ones;
  std::vector<int> ms;
  std::vector<Ceiling> ceilings(quantizers.size());
  for (size_t q = 0; q < quantizers.size(); ++q)
    ceilings[q] = lists_ceiling(s, lists[q], options.target_recall, static_cast<double>(rows) / static_cast<double>(s.db));
  for (size_t i = 0; i < result.candidates.size(); ++i) {
    TuneCandidate& c = result.candidates[i];
    const int m = opq_m(c.factory);
    if (!c.fits || m == 0) continue;
    // Evidence of why it was (not) measured: the lists' nprobe and recall, its least cost.
    const Ceiling& ceiling = ceilings[quantizer_of[i]];
    c.tried_nprobe = ceiling.nprobe;
    c.recall = ceiling.recall;
    if (ceiling.nprobe == 0) continue;  // the lists never reach the target
    const std::unique_ptr<faiss::Index> probe = make_ivf_index(d, c.factory, options.inner_product);
    c.codes_per_query = ceiling.codes_per_query;
    c.cost = modelled_cost(*probe, ceiling.codes_per_query, ceiling.nprobe);
    if (first_choice >= 0 && c.cost >= result.candidates[static_cast<size_t>(first_choice)].cost)
      continue;
    rotated_ones.push_back(static_cast<int64_t>(i));
    if (std::find(ms.begin(), ms.end(), m) == ms.end()) ms.push_back(m);
  }
  if (!rotated_ones.empty()) {
    const int64_t train_n = std::min(s.db, options.codebook_rows);
    const std::vector<Bytes> trained =
        spread_blocks(comm, "tune: OPQ rotations", static_cast<int64_t>(ms.size()), [&](int64_t i) {
          faiss::OPQMatrix opq(d, ms[static_cast<size_t>(i)]);
          opq.niter = kTuneOpqIterations;
          train_opq(opq, train_n, s.rows.data());
          return to_bytes(opq.A);
        });
    for (size_t i = 0; i < ms.size(); ++i) append_from(trained[i], rotations[ms[i]]);
    if (progress) progress("tune: OPQ rotations", static_cast<int64_t>(ms.size()), static_cast<int64_t>(ms.size()));
    measure_all(rotated_ones);
    if (progress) progress("tune: OPQ candidates", static_cast<int64_t>(rotated_ones.size()), static_cast<int64_t>(rotated_ones.size()));
  }

  result.chosen = choose_candidate(result.candidates);
  if (result.chosen >= 0) {
    const auto rotation = rotations.find(opq_m(result.candidates[static_cast<size_t>(result.chosen)].factory));
    if (rotation != rotations.end()) result.rotation = rotation->second;
  }
  return result;
}

std::vector<float> rotate_rows(const std::vector<float>& a, int d_in, const float* x, int64_t n) {
  const size_t din = static_cast<size_t>(d_in), dout = a.size() / din;
  std::vector<float> y(static_cast<size_t>(n) * dout);
  for (int64_t r = 0; r < n; ++r)
    for (size_t i = 0; i < dout; ++i) {
      double sum = 0;
      for (size_t j = 0; j < din; ++j)
        sum += static_cast<double>(a[i * din + j]) * static_cast<double>(x[static_cast<size_t>(r) * din + j]);
      y[static_cast<size_t>(r) * dout + i] = static_cast<float>(sum);
    }
  return y;
}

nlohmann::json tune_json(const TuneResult& result) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const TuneCandidate& c : result.candidates) candidates.push_back(candidate_json(c));
  nlohmann::json out = {{"corpus_rows", result.corpus_rows},
                        {"sample_rows", result.db_rows},
                        {"sample_queries", result.queries},
                        {"candidates", candidates}};
  if (result.chosen >= 0) {
    const TuneCandidate& c = result.candidates[static_cast<size_t>(result.chosen)];
    out["factory"] = c.factory;
    out["nlist"] = c.nlist;
    out["nprobe"] = c.nprobe;
  } else {
    out["factory"] = nullptr;
    out["nlist"] = nullptr;
    out["nprobe"] = nullptr;
  }
  return out;
}

}  // namespace sf::stages
