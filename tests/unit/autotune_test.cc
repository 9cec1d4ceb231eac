// stages/autotune.h without MPI: the automatic nlist, the candidate codes, the size estimate
// against FAISS's own serialization of the filled index, and the cost model's order.
#include <gtest/gtest.h>

#include <faiss/IndexIVF.h>
#include <faiss/IndexFlat.h>

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
  for (const std::string code : {"Flat", "SQ8", "SQ4", "PQ8np"}) {
    SCOPED_TRACE(code);
    auto index = make_ivf_index(d, "IVF" + std::to_string(nlist) + "," + code, false);
    index->train(rows, x.data());
    // Before training the codes (the quantizer filled), and after adding every row.
    auto empty = make_ivf_index(d, "IVF" + std::to_string(nlist) + "," + code, false);
    const faiss::IndexIVF& trained = ivf_of(*index, "test");
    fill_quantizer(ivf_of(*empty, "test"), nlist,
                   dynamic_cast<const faiss::IndexFlat*>(trained.quantizer)->get_xb());
    const uint64_t before = estimated_index_bytes(*empty, rows);
    EXPECT_EQ(estimated_index_bytes(*index, rows), before);
    index->add(rows, x.data());
    EXPECT_EQ(io::serialize_index(*index).size(), before);  // every list non-empty: "full"
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
}

}  // namespace
}  // namespace sf::stages
