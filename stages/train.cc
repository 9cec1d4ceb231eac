#include "stages/train.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/ProductQuantizer.h>
#include <faiss/utils/utils.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include "io/index_file.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "stages/kmeans.h"

namespace sf::stages {
namespace {

using cluster::Bytes;

// Seeds of the independent random choices, derived from the one user seed.
constexpr uint64_t kSampleSalt = 0x73616d706c65ULL;
constexpr uint64_t kCodebookSalt = 0x636f6465626bULL;

// The k-means sample: min(rows, index.train_size or 256 per list, as FAISS's
// max_points_per_centroid) rows; the codebook sample: a seeded subset of it of at most
// index.codebook_sample rows.
int64_t kmeans_sample_rows(int64_t rows, int64_t nlist, const TrainOptions& options) {
  return std::min<int64_t>(rows,
                           options.train_size > 0 ? options.train_size : int64_t{256} * nlist);
}
int64_t codebook_sample_rows(int64_t rows, int64_t nlist, const TrainOptions& options) {
  return std::min(kmeans_sample_rows(rows, nlist, options), options.codebook_sample);
}

// FAISS 1.7.3 reads ClusteringParameters::min_points_per_centroid only to print "WARNING
// clustering N points to K centroids: please provide at least ..." to stderr (once per
// sub-quantizer, and for OPQ once per sub-quantizer per iteration: 816 lines for OPQ16 +
// PQ16 on 5,000 rows). With it 0 the clustering is the same; train_index says it once.
faiss::ClusteringParameters without_small_sample_warning(faiss::ClusteringParameters cp) {
  cp.min_points_per_centroid = 0;
  return cp;
}
constexpr int kFaissMinPointsPerCentroid = 39;  // FAISS's default, what it recommends

// FAISS's message without its "Error in <function> at <file>:<line>: Error: '<test>' failed: ".
std::string faiss_reason(const faiss::FaissException& e) {
  const std::string& msg = e.msg;
  for (const char* marker : {"' failed: ", "Error: "}) {
    const size_t at = msg.rfind(marker);
    if (at != std::string::npos) return msg.substr(at + std::strlen(marker));
  }
  return msg;
}

// Runs FAISS training work; a FAISS error comes out as std::invalid_argument prefixed with
// `what` (the factory and the corpus shape) instead of FAISS's source location.
template <class Work>
void naming_faiss_errors(const std::string& what, Work&& work) {
  try {
    work();
  } catch (const faiss::FaissException& e) {
    throw std::invalid_argument(what + ": " + faiss_reason(e));
  }
}

Bytes to_bytes(const float* x, size_t n) {
  Bytes b(n * sizeof(float));
  if (n > 0) std::memcpy(b.data(), x, b.size());  // x may be null when n == 0
  return b;
}

// Applies the transform chain of `index` (if any) to n rows, one kBlockRows block at a time
// (x[0] must be block-aligned in its global order), each block on one thread with
// single-threaded BLAS (stages/block_parallel.h); returns the transformed rows.
std::vector<float> apply_transforms(const faiss::Index& index, int64_t n, std::vector<float> x,
                                    int d_in) {
  const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index);
  if (pt == nullptr) return x;
  const int d_out = pt->index->d;
  std::vector<float> out(static_cast<size_t>(n) * d_out);
  parallel_blocks((n + kBlockRows - 1) / kBlockRows, [&](int64_t b, int) {
    const int64_t off = b * kBlockRows, m = std::min(kBlockRows, n - off);
    const float* xb = x.data() + off * d_in;
    const float* xt = pt->apply_chain(m, xb);
    std::unique_ptr<const float[]> owned(xt != xb ? xt : nullptr);
    std::copy(xt, xt + m * d_out, out.begin() + off * d_out);
  });
  return out;
}

// Collective. This rank read sample positions [read_lo, read_hi) into `rows`; returns the
// rows of the positions it holds under block_row_range(train_size, kBlockRows), which may
// come from its neighbours.
std::vector<float> move_sample_blocks(cluster::Comm& comm, int64_t read_lo, int64_t read_hi,
                                      std::vector<float> rows, int64_t train_size, int d) {
  const int me = comm.rank();
  const cluster::RowRange held = cluster::block_row_range(train_size, kBlockRows, me, comm.size());
  // Only the pieces at the edges travel; what this rank keeps is not copied through a message.
  std::vector<Bytes> send(comm.size());
  for (int r = 0; r < comm.size(); ++r) {
    const cluster::RowRange to = cluster::block_row_range(train_size, kBlockRows, r, comm.size());
    const int64_t a = std::max(read_lo, to.begin), b = std::min(read_hi, to.end);
    if (a < b && r != me) send[r] = to_bytes(rows.data() + (a - read_lo) * d, static_cast<size_t>(b - a) * d);
  }
  const std::vector<Bytes> parts = comm.alltoallv(send);
  if (held.begin == read_lo && held.end == read_hi) return rows;  // nothing came or went
  std::vector<float> out;
  out.reserve(static_cast<size_t>(held.size()) * d);
  for (int r = 0; r < comm.size(); ++r) {  // by source rank: ascending positions
    if (r == me) {
      const int64_t a = std::max(read_lo, held.begin), b = std::min(read_hi, held.end);
      if (a < b) out.insert(out.end(), rows.begin() + (a - read_lo) * d, rows.begin() + (b - read_lo) * d);
      continue;
    }
    const auto* f = reinterpret_cast<const float*>(parts[r].data());
    out.insert(out.end(), f, f + parts[r].size() / sizeof(float));
  }
  return out;
}

// Trains each untrained transform of the chain on x (n rows), as IndexPreTransform::train
// does, without training the IVF behind it. Single-threaded, BLAS included: FAISS's PCA
// (covariance GEMM, eigen-decomposition) and OPQ training (GEMMs over all n rows, SVD, PQ
// k-means) would otherwise let OpenBLAS split their GEMMs over the threads, and the trained
// matrices would depend on the thread count (stages/block_parallel.h). It costs nothing
// here: OPQ8 on 2048 x 128 trained in 5.5 s on one thread and 43 s on two.
void train_transforms(faiss::Index& index, int64_t n, const float* x) {
  auto* pt = dynamic_cast<faiss::IndexPreTransform*>(&index);
  if (pt == nullptr) return;
  const SingleThreadedBlas one_thread;
  std::vector<float> current(x, x + n * pt->d);
  for (faiss::VectorTransform* vt : pt->chain) {
    auto* opq = dynamic_cast<faiss::OPQMatrix*>(vt);
    if (!vt->is_trained && opq != nullptr && opq->pq == nullptr) {
      train_opq(*opq, n, current.data());
    } else if (!vt->is_trained) {
      vt->train(n, current.data());
    }
    std::unique_ptr<const float[]> next(vt->apply(n, current.data()));
    current.assign(next.get(), next.get() + n * vt->d_out);
  }
}

}  // namespace

void train_opq(faiss::OPQMatrix& opq, int64_t n, const float* x) {
  // The PQ OPQMatrix::train makes when given none (d_out, M, 8 bits; it sets cp.niter and
  // max_points_per_centroid itself), without FAISS's small-sample warning.
  faiss::ProductQuantizer pq(opq.d_out, opq.M, 8);
  pq.cp = without_small_sample_warning(pq.cp);
  opq.pq = &pq;
  try {
    opq.train(n, x);
  } catch (...) {
    opq.pq = nullptr;
    throw;
  }
  opq.pq = nullptr;
}

namespace {

// True when the PQ of `ivfpq` trains the plain way (FAISS's ProductQuantizer::train with
// Train_default, no polysemous reordering, no second-level residuals): then its sub-quantizers
// are independent k-means runs that train_pq_spread can spread over ranks and threads.
bool spreadable_pq(const faiss::IndexIVFPQ& ivfpq) {
  return typeid(ivfpq) == typeid(faiss::IndexIVFPQ) && !ivfpq.do_polysemous_training &&
         ivfpq.pq.train_type == faiss::ProductQuantizer::Train_default &&
         ivfpq.pq.assign_index == nullptr;
}

// Collective. Trains the PQ of `ivfpq` as IndexIVFPQ::train_residual does (same subsample,
// same residuals, one faiss::Clustering per sub-quantizer with pq.cp), but sub-quantizer m
// trains on rank m % size, and a rank's sub-quantizers run on its OpenMP threads: FAISS runs
// them one after another on one process. Same codebooks, any number of ranks. `x` (n rows,
// the codebook sample) and a filled quantizer are needed on rank 0 only; rank 0 ends with
// the trained PQ. A FAISS error names `what` (the factory and the corpus).
void train_pq_spread(cluster::Comm& comm, faiss::IndexIVFPQ& ivfpq, int64_t n, const float* x,
                     const std::string& what) {
  faiss::ProductQuantizer& pq = ivfpq.pq;
  const int d = static_cast<int>(ivfpq.d), m_count = static_cast<int>(pq.M);
  const int dsub = static_cast<int>(pq.dsub), ksub = static_cast<int>(pq.ksub);
  const int size = comm.size();
  std::vector<Bytes> slices(size);
  int64_t rows = 0;
  cluster::run_local_phase(comm, "train: pq residuals", [&] {
    if (comm.rank() != 0) return;
    size_t nn = static_cast<size_t>(n);
    const float* xs = faiss::fvecs_maybe_subsample(
        d, &nn, pq.cp.max_points_per_centroid * pq.ksub, x, false, pq.cp.seed);
    std::unique_ptr<const float[]> owned(xs != x ? xs : nullptr);
    rows = static_cast<int64_t>(nn);
    std::vector<float> residuals(xs, xs + nn * d);
    if (ivfpq.by_residual) {
      std::vector<faiss::Index::idx_t> assign(nn);
      {
        // One call, as train_residual makes, with single-threaded BLAS: a GEMM OpenBLAS
        // splits over the threads could flip near-tie labels (stages/block_parallel.h).
        const SingleThreadedBlas one_thread;
        ivfpq.quantizer->assign(rows, xs, assign.data());
      }
      for (size_t i = 0; i < nn; ++i)
        ivfpq.quantizer->compute_residual(xs + i * d, residuals.data() + i * d, assign[i]);
    }
    for (int m = 0; m < m_count; ++m) {
      Bytes& out = slices[m % size];
      const size_t at = out.size();
      out.resize(at + nn * dsub * sizeof(float));
      auto* dst = reinterpret_cast<float*>(out.data() + at);
      for (size_t i = 0; i < nn; ++i)
        std::memcpy(dst + i * dsub, residuals.data() + i * d + m * dsub, sizeof(float) * dsub);
    }
  });
  comm.allreduce_sum(&rows, 1);  // only rank 0 contributes
  const Bytes mine = comm.alltoallv(slices).at(0);
  std::vector<int> my_ms;
  for (int m = comm.rank(); m < m_count; m += size) my_ms.push_back(m);
  std::vector<float> centroids(my_ms.size() * ksub * dsub);
  cluster::run_local_phase(comm, "train: pq sub-quantizers", [&] {
    const auto* slice0 = reinterpret_cast<const float*>(mine.data());
    // One sub-quantizer per thread, its k-means with single-threaded BLAS also when this rank
    // has one (stages/block_parallel.h): the codebooks do not depend on the thread count.
    naming_faiss_errors(what, [&] {
      parallel_blocks(static_cast<int64_t>(my_ms.size()), [&](int64_t j, int) {
        faiss::Clustering clus(dsub, ksub, without_small_sample_warning(pq.cp));
        faiss::IndexFlatL2 assigner(dsub);
        clus.train(rows, slice0 + j * rows * dsub, assigner);
        std::copy(clus.centroids.begin(), clus.centroids.end(), centroids.begin() + j * ksub * dsub);
      });
    });
  });
  const std::vector<Bytes> parts = comm.gather(to_bytes(centroids.data(), centroids.size()), 0);
  // Agreed: rank 0 must not fail here while the others go on to the next collective.
  cluster::run_local_phase(comm, "train: pq codebooks", [&] {
    if (comm.rank() != 0) return;
    for (int r = 0; r < size; ++r) {
      const auto* c = reinterpret_cast<const float*>(parts[r].data());
      for (int m = r, j = 0; m < m_count; m += size, ++j) pq.set_params(c + j * ksub * dsub, m);
    }
    if (ivfpq.by_residual) ivfpq.precompute_table();
  });
}

// FAISS's advice on the codebook k-means over `codebook_n` rows (fewer than 39 points per
// centroid), which it would print once per clustering; empty when it has none.
std::string small_codebook_sample_advice(const faiss::Index& index, int64_t codebook_n) {
  std::string notes;
  const auto note = [&](const std::string& who, int64_t points, int64_t centroids) {
    const int64_t recommended = centroids * kFaissMinPointsPerCentroid;
    if (points >= recommended) return;
    notes += (notes.empty() ? "" : "; ") + who + ": " + std::to_string(points) + " points for " +
             std::to_string(centroids) + " centroids, FAISS recommends at least " +
             std::to_string(recommended);
  };
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index))
    for (const faiss::VectorTransform* vt : pt->chain)
      if (const auto* opq = dynamic_cast<const faiss::OPQMatrix*>(vt);
          opq != nullptr && !opq->is_trained)
        note("OPQ" + std::to_string(opq->M) + " rotation",
             std::min<int64_t>(codebook_n, opq->max_train_points), 256);
  if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(find_ivf(&index))) {
    const faiss::ProductQuantizer& pq = ivfpq->pq;
    note("PQ" + std::to_string(pq.M) + " sub-quantizers",
         std::min<int64_t>(codebook_n,
                           static_cast<int64_t>(pq.cp.max_points_per_centroid) * pq.ksub),
         static_cast<int64_t>(pq.ksub));
  }
  if (notes.empty()) return notes;
  return "codebook k-means on few points (" + notes +
         "): the codebooks may be poor. The codebook sample is the smallest of the corpus rows, "
         "index.train_size (default 256 x nlist) and index.codebook_sample";
}

}  // namespace

std::string training_misfit(const faiss::Index& index, int64_t rows, const TrainOptions& options) {
  const faiss::IndexIVF* ivf = find_ivf(&index);
  if (ivf == nullptr) return "does not make an IVF index";
  if (ivf->nlist < 1) return "has 0 lists: an IVF index needs at least one";
  const int64_t codebook = codebook_sample_rows(rows, static_cast<int64_t>(ivf->nlist), options);
  const std::string sample =
      "a codebook sample of " + std::to_string(codebook) + " rows" +
      (codebook < rows ? " (index.train_size and index.codebook_sample cap it)" : "");
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index)) {
    for (const faiss::VectorTransform* vt : pt->chain) {
      if (dynamic_cast<const faiss::PCAMatrix*>(vt) != nullptr && vt->d_out > vt->d_in)
        return "applies a PCA from " + std::to_string(vt->d_in) + " to " +
               std::to_string(vt->d_out) +
               " dimensions: a PCA cannot output more dimensions than it takes in";
      if (dynamic_cast<const faiss::OPQMatrix*>(vt) != nullptr && !vt->is_trained && codebook < 256)
        return "trains an OPQ rotation with 256-centroid codebooks on " + sample +
               ": FAISS needs at least 256";
    }
  }
  if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf)) {
    const auto ksub = static_cast<int64_t>(ivfpq->pq.ksub);
    if (codebook < ksub)
      return "trains PQ codebooks of " + std::to_string(ksub) + " centroids on " + sample +
             ": FAISS needs at least " + std::to_string(ksub);
  }
  return {};
}

TrainNeeds train_needs(const faiss::Index& index, int64_t rows, int d, int ranks, int threads,
                       const TrainOptions& options) {
  TrainNeeds needs;
  const faiss::IndexIVF* ivf = find_ivf(&index);
  if (ivf == nullptr || ivf->nlist < 1 || rows < 1 || ranks < 1) return needs;
  const auto k = static_cast<int64_t>(ivf->nlist);
  const int64_t d_out = ivf->d;
  const bool has_transforms = dynamic_cast<const faiss::IndexPreTransform*>(&index) != nullptr;
  const bool needs_codebooks = dynamic_cast<const faiss::IndexIVFFlat*>(ivf) == nullptr;
  needs.sample_rows = kmeans_sample_rows(rows, k, options);
  for (int r = 0; r < ranks; ++r)
    needs.local_rows = std::max(
        needs.local_rows, cluster::block_row_range(needs.sample_rows, kBlockRows, r, ranks).size());
  if (has_transforms || needs_codebooks)
    needs.codebook_rows = std::min(needs.sample_rows, options.codebook_sample);
  const auto f = static_cast<uint64_t>(sizeof(float));
  const auto local = static_cast<uint64_t>(needs.local_rows);
  const auto team = static_cast<uint64_t>(std::max(1, threads));
  // choose_sample: the sorted ids and Floyd's hash set (about 4 words per id).
  uint64_t bytes = static_cast<uint64_t>(needs.sample_rows) * 8 * 5;
  // The rows read and, at more than one rank, the rows held after the move (move_sample_blocks
  // builds them while the rows read still exist; one rank keeps what it read); the transformed
  // copy.
  bytes += (ranks > 1 ? 2 : 1) * local * d * f + (has_transforms ? local * d_out * f : 0);
  // k-means: per-thread and total integer sums and counts, the centroids (double at the start),
  // the labels and distances of the local rows, FAISS's 4096 x 1024 distance block per thread.
  const auto kd = static_cast<uint64_t>(k * d_out);
  bytes += (team + 1) * (kd + static_cast<uint64_t>(k)) * 8 + kd * (8 + f) + local * (8 + f) +
           team * 4096 * 1024 * f;
  // Rank 0: the codebook sample gathered (the parts and the rows), transformed; the index
  // serialized next to itself (the quantizer's centroids).
  const auto codebook = static_cast<uint64_t>(needs.codebook_rows);
  bytes += 2 * codebook * d * f + (has_transforms ? codebook * d_out * f : 0) + 2 * kd * f;
  needs.bytes = bytes;
  return needs;
}

std::unique_ptr<faiss::Index> train_index(cluster::Comm& comm, io::VectorCorpus& corpus,
                                          cluster::RowRange range, const TrainOptions& options,
                                          TrainReport* report_out, const ProgressFn& progress) {
  TrainReport local_report;
  TrainReport& rep = report_out ? *report_out : local_report;
  const int d = corpus.dim();
  const int64_t rows = corpus.rows();

  // Every rank builds the same untrained index from the factory string (cheap) and checks it
  // fits the corpus, so a bad string fails on all ranks alike, before any collective.
  const std::string shape = std::to_string(rows) + " rows x " + std::to_string(d) + " dims";
  const std::string what = "index.factory '" + options.factory + "' on the corpus (" + shape + ")";
  std::unique_ptr<faiss::Index> index = make_ivf_index(d, options.factory, options.inner_product);
  if (options.opq_matrix != nullptr) {
    faiss::OPQMatrix* opq = find_opq(index.get());
    if (opq == nullptr ||
        options.opq_matrix->size() != static_cast<size_t>(opq->d_in) * static_cast<size_t>(opq->d_out))
      throw std::invalid_argument("index.factory '" + options.factory +
                                  "': a trained OPQ rotation was given for it, but it has no OPQ "
                                  "of that size");
    opq->A = *options.opq_matrix;
    opq->is_trained = true;  // train_transforms leaves it as it is
  }
  const std::string misfit = training_misfit(*index, rows, options);
  if (!misfit.empty())
    throw std::invalid_argument("index.factory '" + options.factory + "' " + misfit +
                                "; the corpus has " + shape);
  faiss::IndexIVF* ivf = find_ivf(index.get());
  const int nlist = static_cast<int>(ivf->nlist);
  if (rows < nlist)
    throw std::invalid_argument("the corpus has " + std::to_string(rows) +
                                " rows, fewer than the " + std::to_string(nlist) +
                                " lists of index.factory '" + options.factory + "'");
  const int64_t train_size = kmeans_sample_rows(rows, nlist, options);
  if (train_size < nlist)
    throw std::invalid_argument("index.train_size " + std::to_string(train_size) +
                                " is smaller than nlist " + std::to_string(nlist));
  rep.nlist = nlist;

  // 1. The sample, and this rank's contiguous part of it.
  const std::vector<int64_t> sample = choose_sample(rows, train_size, options.seed ^ kSampleSalt);
  const int64_t read_lo =
      std::lower_bound(sample.begin(), sample.end(), range.begin) - sample.begin();
  const int64_t read_hi = std::lower_bound(sample.begin(), sample.end(), range.end) - sample.begin();
  const std::vector<int64_t> my_ids(sample.begin() + read_lo, sample.begin() + read_hi);
  std::vector<float> read_rows(my_ids.size() * d);
  cluster::run_local_phase(comm, "train: read sample", [&] {
    read_selected_rows(corpus, my_ids, read_rows.data());
    report(progress, "train: read sample", static_cast<int64_t>(my_ids.size()),
           static_cast<int64_t>(my_ids.size()));
  });
  // The sample positions this rank read are contiguous; move them so that each rank holds
  // whole blocks of kBlockRows positions (only the pieces at the edges travel).
  const cluster::RowRange held = cluster::block_row_range(train_size, kBlockRows, comm.rank(), comm.size());
  const int64_t lo = held.begin, hi = held.end;
  std::vector<float> my_rows = move_sample_blocks(comm, read_lo, read_hi, std::move(read_rows),
                                                  train_size, d);
  rep.sample_rows = train_size;
  rep.local_sample_rows = hi - lo;

  // 2. The codebook sample, gathered on rank 0 in global order, when anything needs it.
  const bool has_transforms = dynamic_cast<faiss::IndexPreTransform*>(index.get()) != nullptr;
  const bool needs_codebooks = dynamic_cast<faiss::IndexIVFFlat*>(ivf) == nullptr;
  std::vector<float> codebook_rows;  // rank 0 only
  int64_t codebook_n = 0;
  if (has_transforms || needs_codebooks) {
    const std::vector<int64_t> positions = choose_sample(
        train_size, std::min(train_size, options.codebook_sample), options.seed ^ kCodebookSalt);
    std::vector<float> mine;
    for (int64_t pos : positions)
      if (pos >= lo && pos < hi)
        mine.insert(mine.end(), my_rows.begin() + (pos - lo) * d, my_rows.begin() + (pos - lo + 1) * d);
    const std::vector<Bytes> parts = comm.gather(to_bytes(mine.data(), mine.size()), 0);
    codebook_n = static_cast<int64_t>(positions.size());
    if (comm.rank() == 0) {
      codebook_rows.reserve(static_cast<size_t>(codebook_n) * d);
      for (const Bytes& part : parts) {
        const auto* f = reinterpret_cast<const float*>(part.data());
        codebook_rows.insert(codebook_rows.end(), f, f + part.size() / sizeof(float));
      }
    }
    rep.codebook_rows = codebook_n;
    // Said once here; FAISS's own warning is turned off (without_small_sample_warning).
    if (comm.rank() == 0 && options.warn) {
      const std::string advice = small_codebook_sample_advice(*index, codebook_n);
      if (!advice.empty()) options.warn(advice);
    }
  }

  // Rank 0 trains the transforms; the others receive them inside the serialized index.
  if (has_transforms) {
    Bytes trained;
    cluster::run_local_phase(comm, "train: transforms", [&] {
      if (comm.rank() != 0) return;
      naming_faiss_errors(what,
                          [&] { train_transforms(*index, codebook_n, codebook_rows.data()); });
      trained = io::serialize_index(*index);
    });
    comm.broadcast(trained, 0);
    cluster::run_local_phase(comm, "train: transforms", [&] {
      if (comm.rank() != 0) index = io::deserialize_index(trained);
    });
    ivf = find_ivf(index.get());
  }

  // 3. Coarse k-means over the (transformed) sample, distributed.
  std::vector<float> my_train;
  cluster::run_local_phase(comm, "train: apply transforms", [&] {
    my_train = apply_transforms(*index, hi - lo, std::move(my_rows), d);
  });
  KMeansOptions km;
  km.k = nlist;
  km.iterations = options.kmeans_iterations;
  km.seed = options.seed;
  km.inner_product = options.inner_product;
  km.resume = options.resume_kmeans;
  km.stop_requested = options.stop_requested;
  if (progress)
    km.progress = [&](const std::string& step, int64_t done, int64_t total) {
      progress("train: " + step, done, total);
    };
  const KMeansResult kmeans = distributed_kmeans(
      comm, my_train.data(), hi - lo, lo, train_size,
      static_cast<int>(ivf->d), km);
  rep.objective = kmeans.objective;
  rep.empty_clusters_split = kmeans.empty_clusters_split;

  // 4. Rank 0 fills the quantizer, trains the codebooks and broadcasts the trained index.
  std::vector<float> codebook_train;  // rank 0
  cluster::run_local_phase(comm, "train: quantizer", [&] {
    if (comm.rank() != 0) return;
    fill_quantizer(*ivf, nlist, kmeans.centroids.data());
    codebook_train = apply_transforms(*index, codebook_n, std::move(codebook_rows), d);
  });
  auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf);
  const bool pq_spread = ivfpq != nullptr && spreadable_pq(*ivfpq);
  if (pq_spread) {
    train_pq_spread(comm, *ivfpq, codebook_n, codebook_train.data(), what);
    report(progress, "train: pq codebooks", ivfpq->pq.M, ivfpq->pq.M);
  }
  Bytes trained;
  cluster::run_local_phase(comm, "train: codebooks", [&] {
    if (comm.rank() != 0) return;
    // With the quantizer full, IndexIVF::train skips the coarse clustering (train_q1) and
    // trains only what encodes residuals.
    if (needs_codebooks && !pq_spread) {
      if (ivfpq != nullptr) ivfpq->pq.cp = without_small_sample_warning(ivfpq->pq.cp);
      // Single-threaded BLAS (stages/block_parallel.h): train_residual's coarse assignment
      // (SQ and other residual codebooks) and the PQ k-means would otherwise depend on the
      // thread count. Polysemous training keeps FAISS's threads: single-threaded it takes
      // minutes, and its codebooks may still depend on the thread count (not checked).
      const bool polysemous = ivfpq != nullptr && ivfpq->do_polysemous_training;
      std::optional<SingleThreadedBlas> one_thread;
      if (!polysemous) one_thread.emplace();
      naming_faiss_errors(what, [&] { ivf->train(codebook_n, codebook_train.data()); });
    } else {
      ivf->is_trained = true;
    }
    index->is_trained = true;
    trained = io::serialize_index(*index);
  });
  comm.broadcast(trained, 0);
  rep.index_bytes = trained.size();
  std::unique_ptr<faiss::Index> out;
  cluster::run_local_phase(comm, "train: receive index",
                           [&] { out = io::deserialize_index(trained); });
  return out;
}

}  // namespace sf::stages
