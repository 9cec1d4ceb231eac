// stages/autotune.h without MPI: the automatic nlist, the candidate codes, the size estimate
// against FAISS's own serialization of the filled index, and the cost model's order.
#include <gtest/gtest.h>

#include <faiss/IndexIVF.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>

#include <algorithm>
#include <string>
#include <vector>

#include "io/index_file.h"
#include "stages/autotune.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"
#include "tests/test_util.h"

namespace sf::stages {
namespace {

TEST(AutoTune, NlistIsAPowerOfTwoNearFourRootsWithThirtyNineRowsPerList) {
  EXPECT_EQ(auto_nlist(60000), 1024);  // 4 sqrt = 980
  EXPECT_EQ(auto_nlist(1000000), 4096);  // 4000
  EXPECT_EQ(auto_nlist(5000), 128);     // 283 -> 256, but 39 rows per list caps it at 128
  EXPECT_EQ(auto_nlist(100), 2);
  EXPECT_EQ(auto_nlist(10), 1);
  EXPECT_EQ(auto_nlist(0), 1);
  for (int64_t rows : {40, 999, 12345, 3000000}) {
    const int n = auto_nlist(rows);
    EXPECT_EQ(n & (n - 1), 0) << rows;
    EXPECT_LE(static_cast<int64_t>(n) * 39, std::max<int64_t>(rows, 39)) << rows;
  }
}

TEST(AutoTune, MoreNlistsWhereTheListsKeepTheirRowsOrTheKMeansIsCheap) {
  EXPECT_EQ(auto_nlists(60000, 784), (std::vector<int>{1024, 2048}));  // 4096: 14.6 rows each
  EXPECT_EQ(auto_nlists(40960, 784), (std::vector<int>{1024, 2048}));  // 20 rows per list
  EXPECT_EQ(auto_nlists(40959, 784), (std::vector<int>{1024}));
  // A small corpus: its k-means is cheap, so lists of 4 rows are tried too.
  EXPECT_EQ(auto_nlists(5000, 128), (std::vector<int>{128, 256, 512, 1024}));
  EXPECT_EQ(auto_nlists(10, 8), (std::vector<int>{1, 2}));  // 3 lists would hold under 4 rows
}

TEST(AutoTune, CandidateCodesAreFlatTheScalarQuantizersAndPqsDividingD) {
  EXPECT_EQ(candidate_codes(128), (std::vector<std::string>{"Flat", "SQ8", "SQ6", "SQ4", "PQ32np",
                                                            "PQ16np", "PQ8np"}));
  EXPECT_EQ(candidate_codes(784), (std::vector<std::string>{"Flat", "SQ8", "SQ6", "SQ4", "PQ196np",
                                                            "PQ98np", "PQ49np"}));
  EXPECT_EQ(candidate_codes(36), (std::vector<std::string>{"Flat", "SQ8", "SQ6", "SQ4", "PQ9np"}));
  // 25 dims: no PQ of 4, 8 or 16 dims per code; FAISS makes every one of the others.
  EXPECT_EQ(candidate_codes(25), (std::vector<std::string>{"Flat", "SQ8", "SQ6", "SQ4"}));
  for (const std::string& code : candidate_codes(128))
    EXPECT_NO_THROW(make_ivf_index(128, "IVF16," + code, false)) << code;
}

TEST(AutoTune, EstimatedSizeIsTheSizeOfTheFilledIndexFile) {
  const int d = 32, nlist = 16;
  const int64_t rows = 4000;
  const std::vector<float> x = sf::testing::gaussian_mixture(rows, d, 20, 5);
  const SingleThreadedBlas one_thread;  // a shared machine: FAISS's threads only contend here
  for (const std::string factory :
       {"IVF16,Flat", "IVF16,SQ8", "IVF16,SQ4", "IVF16,PQ8np", "OPQ8,IVF16,PQ8np"}) {
    SCOPED_TRACE(factory);
    auto index = make_ivf_index(d, factory, false);
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index.get()))
      dynamic_cast<faiss::OPQMatrix&>(*pt->chain.at(0)).niter = 2;  // its size, not its quality
    index->train(rows, x.data());
    // Before training the codes and the rotation (the quantizer filled), and after adding
    // every row.
    auto empty = make_ivf_index(d, factory, false);
    const faiss::IndexIVF& trained = ivf_of(*index, "test");
    fill_quantizer(ivf_of(*empty, "test"), nlist,
                   dynamic_cast<const faiss::IndexFlat*>(trained.quantizer)->get_xb());
    const uint64_t before = estimated_index_bytes(*empty, rows);
    EXPECT_EQ(estimated_index_bytes(*index, rows), before);
    index->add(rows, x.data());
    EXPECT_EQ(io::serialize_index(*index).size(), before);  // every list non-empty: "full"
  }
}

TEST(AutoTune, EveryPqIsACandidateAgainBehindAnOpqRotation) {
  TuneOptions options;
  const std::vector<TuneCandidate> c = tune_candidates(32, 16, 4000, options);
  std::vector<std::string> factories;
  for (const TuneCandidate& t : c) factories.push_back(t.factory);
  EXPECT_EQ(factories, (std::vector<std::string>{"IVF16,Flat", "IVF16,SQ8", "IVF16,SQ6", "IVF16,SQ4",
                                                 "IVF16,PQ8np", "IVF16,PQ4np", "IVF16,PQ2np",
                                                 "OPQ8,IVF16,PQ8np", "OPQ4,IVF16,PQ4np",
                                                 "OPQ2,IVF16,PQ2np"}));
  // The same codes, plus the 32 x 32 rotation and its header (sizes are exact:
  // EstimatedSizeIsTheSizeOfTheFilledIndexFile).
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GT(c[7 + i].index_bytes, c[4 + i].index_bytes + 32 * 32 * sizeof(float));
    EXPECT_LT(c[7 + i].index_bytes, c[4 + i].index_bytes + 32 * 32 * sizeof(float) + 256);
    EXPECT_EQ(opq_m(c[7 + i].factory), 8 >> i);
    EXPECT_EQ(opq_m(c[4 + i].factory), 0);
  }
  // A budget is a budget for them too.
  options.budget_bytes = c[4].index_bytes;
  for (const TuneCandidate& t : tune_candidates(32, 16, 4000, options))
    EXPECT_EQ(t.fits, t.index_bytes <= options.budget_bytes) << t.factory;
}

TEST(AutoTune, RotateRowsIsFaissLinearTransformApplyInDouble) {
  const int d = 16;
  faiss::RandomRotationMatrix rotation(d, d);
  rotation.init(3);
  const std::vector<float> x = sf::testing::gaussian_mixture(50, d, 4, 9);
  const std::vector<float> mine = rotate_rows(rotation.A, d, x.data(), 50);
  std::vector<float> faiss_rows(x.size());
  rotation.apply_noalloc(50, x.data(), faiss_rows.data());
  ASSERT_EQ(mine.size(), faiss_rows.size());
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_NEAR(mine[i], faiss_rows[i], 1e-4) << i;
  // An orthonormal matrix keeps each row's norm (what lets the tuning's k-means be turned).
  for (int r = 0; r < 50; ++r) {
    double before = 0, after = 0;
    for (int j = 0; j < d; ++j) {
      before += double(x[r * d + j]) * x[r * d + j];
      after += double(mine[r * d + j]) * mine[r * d + j];
    }
    EXPECT_NEAR(after, before, 1e-4 * before) << r;
  }
}

TEST(AutoTune, CostModelChargesScannedCodesByTheirKind) {
  auto flat = make_ivf_index(128, "IVF64,Flat", false);
  auto sq8 = make_ivf_index(128, "IVF64,SQ8", false);
  auto pq = make_ivf_index(128, "IVF64,PQ16np", false);
  // Per code scanned: a PQ16 code is cheaper than a Flat one, an SQ8 one dearer (Debian's
  // FAISS has no SIMD scalar-quantizer kernels).
  const double f = modelled_cost(*flat, 2000, 8) - modelled_cost(*flat, 1000, 8);
  const double s = modelled_cost(*sq8, 2000, 8) - modelled_cost(*sq8, 1000, 8);
  const double p = modelled_cost(*pq, 2000, 8) - modelled_cost(*pq, 1000, 8);
  EXPECT_GT(s, f);
  EXPECT_LT(p, f);
  // More probes cost more, for every code.
  for (const auto* index : {flat.get(), sq8.get(), pq.get()})
    EXPECT_GE(modelled_cost(*index, 1000, 16), modelled_cost(*index, 1000, 8));
  // A rotation adds its matrix product per query, not per code or probe.
  auto opq = make_ivf_index(128, "OPQ16,IVF64,PQ16np", false);
  for (int nprobe : {1, 8})
    EXPECT_NEAR(modelled_cost(*opq, 1000, nprobe) - modelled_cost(*pq, 1000, nprobe),
                0.2 * 128 * 128, 1e-6);
}

}  // namespace
}  // namespace sf::stages
