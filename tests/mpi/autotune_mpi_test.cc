// MPI tests of stages/autotune.h: the tuning measures and chooses alike for any number of ranks
// and threads, the choice reaches the target within the budget, and a budget that rules out
// Flat chooses a compressed code.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>

#include "io/vector_file.h"
#include "stages/autotune.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "stages/train.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::stages {
namespace {

using sf::testing::SharedTempDir;
using sf::testing::world;

// The choice and the measurements that decide it (not the timings).
std::string decisive(const TuneResult& r) {
  std::string out = "chosen " + std::to_string(r.chosen) + " db " + std::to_string(r.db_rows) + " nq " + std::to_string(r.queries) + "\n";
  for (const TuneCandidate& c : r.candidates)
    out += c.factory + " " + std::to_string(c.index_bytes) + " " + std::to_string(c.fits) + " " +
           std::to_string(c.nprobe) + " " + std::to_string(c.recall) + " " +
           std::to_string(c.codes_per_query) + " " + std::to_string(c.cost) + "\n";
  return out;
}

struct Tuned {
  TuneResult result;
  std::vector<float> centroids;
  int nlist = 0;
};

Tuned tune(cluster::Comm& comm, io::VectorCorpus& corpus, const TuneOptions& options) {
  const int64_t rows = corpus.rows();
  const cluster::RowRange range = rank_rows(rows, comm.rank(), comm.size());
  Tuned t;
  t.nlist = auto_nlist(rows);
  TrainOptions topt;
  topt.factory = "IVF" + std::to_string(t.nlist) + ",Flat";
  auto base = train_index(comm, corpus, range, topt);
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(ivf_of(*base, "test").quantizer);
  t.centroids.assign(flat->get_xb(), flat->get_xb() + static_cast<size_t>(t.nlist) * corpus.dim());
  t.result = tune_index(comm, corpus, range, {{t.nlist, t.centroids}}, options);
  return t;
}

// rows x 32 of a Gaussian mixture of 40 centres (seed), as an fvecs file every rank reads.
// `flat_tail`: dimensions 8-31 scaled by 0.05, so that the first two of PQ8's sub-quantizers
// hold nearly all of the variance and an OPQ rotation, which spreads it, pays.
std::vector<float> mixture(int64_t rows, uint64_t seed, bool flat_tail) {
  std::vector<float> x = sf::testing::gaussian_mixture(rows, 32, 40, seed);
  if (flat_tail)
    for (size_t i = 0; i < x.size(); ++i) x[i] *= i % 32 < 8 ? 1.0F : 0.05F;
  return x;
}
struct MixtureFile {
  MixtureFile(cluster::Comm& comm, int64_t rows, uint64_t seed, bool flat_tail = false)
      : dir(comm),
        corpus((sf::testing::write_fvecs_on_rank0(comm, dir.file("x.fvecs"),
                                                  mixture(rows, seed, flat_tail), rows, 32),
                std::vector<std::string>{dir.file("x.fvecs")}),
               io::VectorFormat::kFvecs) {}
  SharedTempDir dir;
  io::VectorCorpus corpus;
};

TEST(AutoTune, SameChoiceForAnyRanksAndThreadsReachingTheTarget) {
  cluster::Comm& comm = world();
  MixtureFile file(comm, 6000, 17);
  io::VectorCorpus& corpus = file.corpus;
  TuneOptions options;
  options.tune_rows = 3000;
  options.tune_queries = 200;
  options.target_recall = 0.9;
  omp_set_num_threads(1);
  const Tuned one_thread = tune(comm, corpus, options);
  omp_set_num_threads(2);
  const Tuned two_threads = tune(comm, corpus, options);
  omp_set_num_threads(1);
  EXPECT_EQ(decisive(one_thread.result), decisive(two_threads.result));
  const TuneResult& r = one_thread.result;
  ASSERT_GE(r.chosen, 0) << decisive(r);
  const TuneCandidate& c = r.candidates[static_cast<size_t>(r.chosen)];
  EXPECT_GE(c.recall, options.target_recall);
  EXPECT_GE(c.nprobe, 1);
  EXPECT_EQ(r.db_rows, 3000);
  EXPECT_EQ(r.queries, 200);
  // The choice is the cheapest of those that reached the target.
  for (const TuneCandidate& o : r.candidates) {
    if (o.measured && o.nprobe > 0) {
      EXPECT_LE(c.cost, o.cost) << o.factory;
    }
  }

  // And exactly what one rank measures.
  auto serial = cluster::make_serial_comm();
  if (comm.rank() == 0) {
    const Tuned alone = tune(*serial, corpus, options);
    EXPECT_EQ(decisive(alone.result), decisive(r));
  }
}

TEST(AutoTune, BudgetBelowFlatChoosesACompressedCodeWithinIt) {
  cluster::Comm& comm = world();
  omp_set_num_threads(1);
  const int d = 32;
  const int64_t rows = 6000;
  MixtureFile file(comm, rows, 18);
  io::VectorCorpus& corpus = file.corpus;
  TuneOptions options;
  options.tune_rows = 3000;
  options.tune_queries = 200;
  options.target_recall = 0.8;
  const int nlist = auto_nlist(rows);
  const std::vector<TuneCandidate> sized = tune_candidates(d, nlist, rows, options);
  ASSERT_EQ(sized.front().factory, "IVF" + std::to_string(nlist) + ",Flat");
  options.budget_bytes = sized.front().index_bytes - 1;  // Flat does not fit, SQ8 does
  const Tuned t = tune(comm, corpus, options);
  const TuneResult& r = t.result;
  EXPECT_FALSE(r.candidates.front().fits);
  EXPECT_FALSE(r.candidates.front().measured);
  ASSERT_GE(r.chosen, 1) << decisive(r);
  const TuneCandidate& c = r.candidates[static_cast<size_t>(r.chosen)];
  EXPECT_LE(c.index_bytes, options.budget_bytes);
  EXPECT_GE(c.recall, options.target_recall);

  // A target no candidate reaches: nothing is chosen, and each says its best recall.
  options.target_recall = 1.0;
  options.budget_bytes = sized.back().index_bytes;  // only the smallest PQ fits
  const Tuned none = tune(comm, corpus, options);
  EXPECT_EQ(none.result.chosen, -1) << decisive(none.result);
  EXPECT_TRUE(none.result.candidates.back().measured);
  EXPECT_GT(none.result.candidates.back().recall, 0.1);
  EXPECT_LT(none.result.candidates.back().recall, 1.0);
}

// Variance in a quarter of the dimensions: PQ4 plateaus well below the target (0.65 on this
// sample), its OPQ4 (the same codes behind a rotation, plus the 32 x 32 matrix) reaches it
// (0.83), within a budget that only PQ4, PQ2 and their OPQs fit (OPQ2: 0.75). The same choice
// at 1 and 2 threads.
TEST(AutoTune, OpqWherePlainPqCannotReachTheTarget) {
  cluster::Comm& comm = world();
  const int d = 32;
  const int64_t rows = 6000;
  MixtureFile file(comm, rows, 19, /*flat_tail=*/true);
  TuneOptions options;
  options.tune_rows = 3000;
  options.tune_queries = 200;
  options.target_recall = 0.78;
  const std::vector<TuneCandidate> sized = tune_candidates(d, auto_nlist(rows), rows, options);
  const auto named = [](const std::vector<TuneCandidate>& c, const std::string& factory) {
    const auto it = std::find_if(c.begin(), c.end(), [&](const TuneCandidate& t) { return t.factory == factory; });
    EXPECT_NE(it, c.end()) << factory;
    return it == c.end() ? TuneCandidate{} : *it;
  };
  const std::string ivf = "IVF" + std::to_string(auto_nlist(rows));
  options.budget_bytes = named(sized, "OPQ4," + ivf + ",PQ4np").index_bytes;
  ASSERT_LT(options.budget_bytes, named(sized, ivf + ",PQ8np").index_bytes);
  omp_set_num_threads(2);
  const Tuned two_threads = tune(comm, file.corpus, options);
  omp_set_num_threads(1);
  const Tuned t = tune(comm, file.corpus, options);
  const TuneResult& r = t.result;
  EXPECT_EQ(decisive(r), decisive(two_threads.result));
  const TuneCandidate pq = named(r.candidates, ivf + ",PQ4np");
  const TuneCandidate opq = named(r.candidates, "OPQ4," + ivf + ",PQ4np");
  EXPECT_TRUE(pq.measured);
  EXPECT_EQ(pq.nprobe, 0) << decisive(r);
  EXPECT_LT(pq.recall, options.target_recall);
  EXPECT_TRUE(opq.measured) << decisive(r);  // nothing plain reached the target
  EXPECT_GE(opq.recall, options.target_recall) << decisive(r);
  ASSERT_GE(r.chosen, 0) << decisive(r);
  const TuneCandidate& c = r.candidates[static_cast<size_t>(r.chosen)];
  EXPECT_EQ(c.factory, opq.factory) << decisive(r);
  EXPECT_LE(c.index_bytes, options.budget_bytes);

  // With room for SQ8, which reaches the target at a lower cost than any OPQ can: the OPQ
  // candidates are not measured, their least cost (nprobe 1) is no less than the choice's.
  options.budget_bytes = 0;
  const Tuned roomy = tune(comm, file.corpus, options);
  ASSERT_GE(roomy.result.chosen, 0) << decisive(roomy.result);
  const TuneCandidate& best = roomy.result.candidates[static_cast<size_t>(roomy.result.chosen)];
  EXPECT_EQ(opq_m(best.factory), 0) << decisive(roomy.result);
  int skipped = 0;
  for (const TuneCandidate& o : roomy.result.candidates)
    if (opq_m(o.factory) > 0 && !o.measured) {
      ++skipped;
      EXPECT_GE(o.cost, best.cost) << o.factory;
    }
  EXPECT_GT(skipped, 0) << decisive(roomy.result);
}

}  // namespace
}  // namespace sf::stages
