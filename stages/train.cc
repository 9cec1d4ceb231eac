#include "stages/train.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "io/index_file.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "stages/kmeans.h"

namespace sf::stages {
namespace {

using cluster::Bytes;

// Seeds of the independent random choices, derived from the one user seed.
constexpr uint64_t kSampleSalt = 0x73616d706c65ULL;
constexpr uint64_t kCodebookSalt = 0x636f6465626bULL;

// Runs fn with OpenMP limited to one thread: HNSW insertion is only deterministic then.
template <class F>
void single_threaded(F&& fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  try {
    fn();
  } catch (...) {
    omp_set_num_threads(saved);
    throw;
  }
  omp_set_num_threads(saved);
}

// Applies the transform chain of `index` (if any) to n rows; returns the transformed rows.
std::vector<float> apply_transforms(const faiss::Index& index, int64_t n, const float* x,
                                    int d_in) {
  const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index);
  if (pt == nullptr || n == 0) {
    if (pt == nullptr) return std::vector<float>(x, x + n * d_in);
    return {};
  }
  std::unique_ptr<const float[]> out(pt->apply_chain(n, x));
  const int d_out = pt->index->d;
  return std::vector<float>(out.get(), out.get() + n * d_out);
}

// Trains each untrained transform of the chain on x (n rows), as IndexPreTransform::train
// does, without training the IVF behind it.
void train_transforms(faiss::Index& index, int64_t n, const float* x) {
  auto* pt = dynamic_cast<faiss::IndexPreTransform*>(&index);
  if (pt == nullptr) return;
  std::vector<float> current(x, x + n * pt->d);
  for (faiss::VectorTransform* vt : pt->chain) {
    if (!vt->is_trained) vt->train(n, current.data());
    std::unique_ptr<const float[]> next(vt->apply(n, current.data()));
    current.assign(next.get(), next.get() + n * vt->d_out);
  }
}

Bytes to_bytes(const float* x, size_t n) {
  Bytes b(n * sizeof(float));
  std::memcpy(b.data(), x, b.size());
  return b;
}

}  // namespace

std::unique_ptr<faiss::Index> train_index(cluster::Comm& comm, io::VectorCorpus& corpus,
                                          cluster::RowRange range, const TrainOptions& options,
                                          TrainReport* report_out, const ProgressFn& progress) {
  TrainReport local_report;
  TrainReport& rep = report_out ? *report_out : local_report;
  const int d = corpus.dim();
  const int64_t rows = corpus.rows();

  // Every rank builds the same untrained index from the factory string (cheap), so a bad
  // string fails on all ranks alike.
  std::unique_ptr<faiss::Index> index = make_ivf_index(d, options.factory, options.inner_product);
  faiss::IndexIVF* ivf = find_ivf(index.get());
  const int nlist = static_cast<int>(ivf->nlist);
  rep.nlist = nlist;
  if (rows < nlist)
    throw std::invalid_argument("the corpus has " + std::to_string(rows) +
                                " rows, fewer than the " + std::to_string(nlist) +
                                " lists of index.factory '" + options.factory + "'");
  const int64_t train_size = std::min<int64_t>(
      rows, options.train_size > 0 ? options.train_size : int64_t{256} * nlist);
  if (train_size < nlist)
    throw std::invalid_argument("index.train_size " + std::to_string(train_size) +
                                " is smaller than nlist " + std::to_string(nlist));

  // 1. The sample, and this rank's contiguous part of it.
  const std::vector<int64_t> sample = choose_sample(rows, train_size, options.seed ^ kSampleSalt);
  const auto lo = std::lower_bound(sample.begin(), sample.end(), range.begin) - sample.begin();
  const auto hi = std::lower_bound(sample.begin(), sample.end(), range.end) - sample.begin();
  const std::vector<int64_t> my_ids(sample.begin() + lo, sample.begin() + hi);
  std::vector<float> my_rows(my_ids.size() * d);
  cluster::run_local_phase(comm, "train: read sample", [&] {
    read_selected_rows(corpus, my_ids, my_rows.data());
    report(progress, "train: read sample", static_cast<int64_t>(my_ids.size()),
           static_cast<int64_t>(my_ids.size()));
  });
  rep.sample_rows = train_size;
  rep.local_sample_rows = static_cast<int64_t>(my_ids.size());

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
  }

  // Rank 0 trains the transforms; the others receive them inside the serialized index.
  if (has_transforms) {
    Bytes trained;
    cluster::run_local_phase(comm, "train: transforms", [&] {
      if (comm.rank() != 0) return;
      train_transforms(*index, codebook_n, codebook_rows.data());
      trained = io::serialize_index(*index);
    });
    comm.broadcast(trained, 0);
    if (comm.rank() != 0) index = io::deserialize_index(trained);
    ivf = find_ivf(index.get());
  }

  // 3. Coarse k-means over the (transformed) sample, distributed.
  std::vector<float> my_train = apply_transforms(*index, static_cast<int64_t>(my_ids.size()),
                                                 my_rows.data(), d);
  my_rows.clear();
  my_rows.shrink_to_fit();
  KMeansOptions km;
  km.k = nlist;
  km.iterations = options.kmeans_iterations;
  km.seed = options.seed;
  km.inner_product = options.inner_product;
  const KMeansResult kmeans = distributed_kmeans(
      comm, my_train.data(), static_cast<int64_t>(my_ids.size()), lo, train_size,
      static_cast<int>(ivf->d), km);
  rep.objective = kmeans.objective;
  rep.empty_clusters_split = kmeans.empty_clusters_split;
  report(progress, "train: k-means", options.kmeans_iterations, options.kmeans_iterations);

  // 4. Rank 0 fills the quantizer, trains the codebooks and broadcasts the trained index.
  Bytes trained;
  cluster::run_local_phase(comm, "train: codebooks", [&] {
    if (comm.rank() != 0) return;
    ivf->quantizer->reset();
    single_threaded([&] { ivf->quantizer->add(nlist, kmeans.centroids.data()); });
    ivf->quantizer->is_trained = true;
    // With the quantizer full, IndexIVF::train skips the coarse clustering (train_q1) and
    // trains only what encodes residuals.
    const std::vector<float> codebook_train =
        has_transforms ? apply_transforms(*index, codebook_n, codebook_rows.data(), d)
                       : std::move(codebook_rows);
    if (needs_codebooks)
      ivf->train(codebook_n, codebook_train.data());
    else
      ivf->is_trained = true;
    index->is_trained = true;
    trained = io::serialize_index(*index);
  });
  comm.broadcast(trained, 0);
  rep.index_bytes = trained.size();
  return io::deserialize_index(trained);
}

}  // namespace sf::stages
