// Stage `train`: the trained, empty index, identical on every rank.
//
// 1. A training sample of global row ids is chosen from the seed (same for any rank count);
//    each rank reads the sample rows inside its own row range.
// 2. A bounded codebook sample (a seeded subset of it) is gathered on rank 0, which trains
//    the vector transforms (OPQ, PCA, ...) and, later, the codebooks (PQ, SQ).
// 3. The coarse quantizer is trained by distributed k-means (stages/kmeans.h): no rank holds
//    the whole sample.
// 4. PQ codebooks of IVF-PQ train as FAISS's IndexIVFPQ::train_residual does (same
//    subsample, residuals and per-sub-quantizer Clustering, identical codebooks), with the
//    sub-quantizers spread over the ranks and their threads; other codebooks (SQ, polysemous
//    PQ, ...) train on rank 0 with FAISS's own train().
// 5. Rank 0 broadcasts the trained, empty index as a serialized FAISS index.
//
// Threads: every FAISS step that goes through BLAS runs on fixed blocks with single-threaded
// BLAS, or (transform and codebook training on rank 0) single-threaded, so the trained index
// is the same for any number of threads too (stages/block_parallel.h). Not polysemous PQ
// training, which keeps FAISS's threads.
//
// Stopping: with options.stop_requested set, the ranks agree at every k-means iteration
// boundary (and once after the last, before the codebooks) whether to stop, and then throw
// KMeansStopped alike; options.resume_kmeans continues from its state, to the same index.
// FAISS's own training (transforms, codebooks) runs to its end once started.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <faiss/VectorTransform.h>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/kmeans.h"
#include "stages/progress.h"
#include "stages/stop_request.h"

namespace sf::stages {

struct TrainOptions {
  std::string factory;
  bool inner_product = false;
  int64_t train_size = 0;  // 0: min(rows, 256 * nlist), as FAISS's max_points_per_centroid
  int kmeans_iterations = 10;
  int64_t codebook_sample = 65536;
  uint64_t seed = 1234;
  // The coarse k-means continues from this state (of a stopped run with the same options and
  // corpus) instead of starting afresh. Not owned; null: start afresh.
  const KMeansState* resume_kmeans = nullptr;
  // The OPQ rotation of an "OPQ<m>,..." factory, trained already (d x d floats, FAISS's
  // LinearTransform::A; index.factory auto: the tuning's). Not owned; null: FAISS trains it.
  const std::vector<float>* opq_matrix = nullptr;
  StopRequestFn stop_requested;  // see stages/stop_request.h; empty: train to the end
  // Called on rank 0 only, before the codebooks train, with advice the pipeline should log
  // once (a codebook sample smaller than FAISS recommends). May be empty. Not collective.
  std::function<void(const std::string&)> warn;
};

struct TrainReport {
  int64_t sample_rows = 0;      // k-means sample, all ranks
  int64_t local_sample_rows = 0;
  int64_t codebook_rows = 0;    // gathered on rank 0 (0 when nothing needed it)
  int nlist = 0;
  int empty_clusters_split = 0;
  std::vector<double> objective;
  size_t index_bytes = 0;       // size of the broadcast index
};

// Why `index` (from make_ivf_index) cannot be trained on a corpus of `rows` rows with these
// options, known before any work: no lists, a PCA to more dimensions than it takes in, PQ or
// OPQ codebooks of more centroids than the codebook sample has rows. A clause to follow the
// factory string ("has 0 lists: ..."); empty when none applies. No MPI.
std::string training_misfit(const faiss::Index& index, int64_t rows, const TrainOptions& options);

// What train_index holds at most on one rank, known before any work, for the memory budget.
struct TrainNeeds {
  int64_t sample_rows = 0;    // the k-means sample, all ranks
  int64_t local_rows = 0;     // the most any rank holds of it
  int64_t codebook_rows = 0;  // gathered on rank 0 (0 when nothing needs it)
  uint64_t bytes = 0;         // the most any rank holds (rank 0: its share and the codebook sample)
};
// Of `index` (from make_ivf_index, untrained) on `rows` rows of `d` dims at `ranks` ranks of
// `threads` threads: the sample's ids (every rank), a rank's sample rows (twice while they move
// between ranks, at more than one rank) and their transformed copy, the k-means buffers (per-thread sums, labels,
// FAISS's distance blocks), the codebook sample on rank 0 (gathered, transformed) and the
// serialized index. No MPI.
TrainNeeds train_needs(const faiss::Index& index, int64_t rows, int d, int ranks, int threads,
                       const TrainOptions& options);

// Trains `opq` (untrained, no PQ of its own) on x (n rows of opq.d_in) as OPQMatrix::train
// does with the PQ it makes when given none (d_out, M, 8 bits), without FAISS's small-sample
// warning. BLAS threads are the caller's (train_index runs it single-threaded). Throws
// faiss::FaissException (fewer than 256 rows). No MPI.
void train_opq(faiss::OPQMatrix& opq, int64_t n, const float* x);

// Collective. REQUIRES: corpus.rows() >= comm.size(); every rank passes its own row_range.
// Throws std::invalid_argument (bad factory, a training_misfit, sample smaller than nlist:
// before any collective), io::InputError, cluster::PhaseError (also a FAISS training error,
// naming the factory and the corpus's rows x dims) or KMeansStopped (same on every rank).
std::unique_ptr<faiss::Index> train_index(cluster::Comm& comm, io::VectorCorpus& corpus,
                                          cluster::RowRange range, const TrainOptions& options,
                                          TrainReport* report = nullptr,
                                          const ProgressFn& progress = {});

}  // namespace sf::stages
