// Unit tests for stages/list_scan.h: the batch scanner against FAISS's own search (bit for bit
// for IVF-Flat), and merge_topk.
#include "stages/list_scan.h"

#include <faiss/IndexIVF.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>

#include "stages/ivf_index.h"
#include "tests/test_util.h"
#include "tests/unit/partition_fixtures.h"

namespace sf::stages {
namespace {

// A plain FAISS search of `index` at nprobe p (the reference), and each query's p probed
// lists with their coarse distances (what a BatchScanner is given).
struct FaissSearch {
  std::vector<float> dis, coarse_dis;
  std::vector<faiss::Index::idx_t> ids, lists;
};

FaissSearch faiss_search(faiss::Index& index, faiss::IndexIVF& ivf, const std::vector<float>& q,
                         int nq, int k, int p) {
  ivf.nprobe = p;
  FaissSearch r;
  r.dis.resize(nq * k);
  r.ids.resize(nq * k);
  index.search(nq, q.data(), k, r.dis.data(), r.ids.data());
  r.coarse_dis.resize(nq * p);
  r.lists.resize(nq * p);
  ivf.quantizer->search(nq, q.data(), p, r.coarse_dis.data(), r.lists.data());
  return r;
}

TEST(BatchScanner, EqualsFaissSearchForFlatPqAndSq) {
  const std::vector<float> x = testing::gaussian_mixture(3000, kDim, 8, 3);
  const std::vector<float> q = testing::gaussian_mixture(64, kDim, 8, 4);
  const int nq = 64, k = 10, nprobe = 3;
  for (const char* factory : {"IVF16,Flat", "IVF16,PQ4x4np", "IVF16,SQ8"}) {
    auto index = build(factory, x);
    faiss::IndexIVF* ivf = find_ivf(index.get());
    const FaissSearch ref = faiss_search(*index, *ivf, q, nq, k, nprobe);
    const std::vector<float>& ref_d = ref.dis;
    const std::vector<faiss::Index::idx_t>& ref_i = ref.ids;
    // Group the (query, list) pairs by list, scan each list once.
    const std::vector<float>& cd = ref.coarse_dis;
    const std::vector<faiss::Index::idx_t>& cl = ref.lists;
    std::map<int64_t, std::pair<std::vector<int64_t>, std::vector<float>>> groups;
    for (int i = 0; i < nq; ++i)
      for (int t = 0; t < nprobe; ++t) {
        groups[cl[i * nprobe + t]].first.push_back(i);
        groups[cl[i * nprobe + t]].second.push_back(cd[i * nprobe + t]);
      }
    BatchScanner scanner(*ivf, k, nq, q.data());
    int64_t expected_codes = 0;
    for (const auto& [list, g] : groups) {
      scanner.scan_list(*ivf->invlists, list, g.first, g.second);
      expected_codes += static_cast<int64_t>(ivf->invlists->list_size(list) * g.first.size());
    }
    scanner.finish();
    EXPECT_EQ(scanner.codes_scanned(), expected_codes);
    for (int i = 0; i < nq; ++i)
      for (int t = 0; t < k; ++t) {
        EXPECT_FLOAT_EQ(scanner.distances(i)[t], ref_d[i * k + t]) << factory << " q" << i;
        if (scanner.ids(i)[t] != ref_i[i * k + t]) {  // only a distance tie may reorder
          EXPECT_FLOAT_EQ(scanner.distances(i)[t], ref_d[i * k + t]);
        }
      }
  }
}

// IVF-Flat, both metrics: the scanner's distances are FAISS's IVFFlat search's bit for bit,
// whether a list is scanned for one query at a time or for the whole group at once (the GEMM
// path with its exact rescoring), for lists of ~190 codes, of more than one 4,096-code block,
// of fewer codes than k, and rows of very different norms (inner product with small cosines:
// the case a margin on |q|^2 alone got wrong).
TEST(BatchScanner, FlatDistancesAreFaissBitForBit) {
  struct Case {
    const char* factory;
    int64_t rows;
    bool ip;
    bool spread_norms;
    float offset;  // added to every coordinate: L2 distances tiny next to the norms
  };
  const Case cases[] = {
      {"IVF16,Flat", 3000, false, false, 0},  {"IVF16,Flat", 3000, true, false, 0},
      {"IVF1,Flat", 5000, false, false, 0},   {"IVF1,Flat", 5000, true, true, 0},
      {"IVF8,Flat", 40, false, false, 0},     {"IVF16,Flat", 3000, true, true, 0},
      {"IVF4,Flat", 3000, false, false, 3000}};
  const int nq = 64, k = 10, nprobe = 4;
  for (const Case& c : cases) {
    const std::string name = std::string(c.factory) + (c.ip ? " IP" : " L2") +
                             (c.spread_norms ? " spread norms" : "") +
                             (c.offset != 0 ? " offset" : "");
    std::vector<float> q = testing::gaussian_mixture(nq, kDim, 8, 6);
    std::vector<float> x = testing::gaussian_mixture(c.rows, kDim, 8, 5);
    for (float& v : q) v += c.offset;
    for (float& v : x) v += c.offset;
    if (c.spread_norms) {  // rows scaled by 1 .. 1000: the best inner products are long rows
      std::mt19937_64 rng(7);
      std::uniform_real_distribution<float> scale(1.0f, 1000.0f);
      for (int64_t i = 0; i < c.rows; ++i) {
        const float f = scale(rng);
        for (int j = 0; j < kDim; ++j) x[i * kDim + j] *= f;
      }
    }
    auto index = build(c.factory, x, nullptr, c.ip);
    faiss::IndexIVF* ivf = find_ivf(index.get());
    const int p = std::min<int>(nprobe, static_cast<int>(ivf->nlist));
    const FaissSearch ref = faiss_search(*index, *ivf, q, nq, k, p);
    const std::vector<float>& ref_d = ref.dis;
    const std::vector<faiss::Index::idx_t>& ref_i = ref.ids;
    const std::vector<float>& cd = ref.coarse_dis;
    const std::vector<faiss::Index::idx_t>& cl = ref.lists;
    for (const bool one_at_a_time : {false, true}) {
      BatchScanner scanner(*ivf, k, nq, q.data());
      std::map<int64_t, std::pair<std::vector<int64_t>, std::vector<float>>> groups;
      for (int i = 0; i < nq; ++i)
        for (int t = 0; t < p; ++t) {
          if (one_at_a_time) {
            scanner.scan_list(*ivf->invlists, cl[i * p + t], {i}, {cd[i * p + t]});
            continue;
          }
          groups[cl[i * p + t]].first.push_back(i);
          groups[cl[i * p + t]].second.push_back(cd[i * p + t]);
        }
      for (const auto& [list, g] : groups)
        scanner.scan_list(*ivf->invlists, list, g.first, g.second);
      scanner.finish();
      for (int i = 0; i < nq; ++i)
        for (int t = 0; t < k; ++t) {
          const float want = ref_d[i * k + t];
          if (std::isinf(want) || want == std::numeric_limits<float>::max() ||
              want == std::numeric_limits<float>::lowest()) {  // fewer than k codes probed
            EXPECT_EQ(scanner.ids(i)[t], -1) << name;
            continue;
          }
          EXPECT_EQ(scanner.distances(i)[t], want)
              << name << (one_at_a_time ? " single" : " grouped") << " q" << i << " rank " << t;
          if (scanner.ids(i)[t] != ref_i[i * k + t]) {  // only an exact tie may reorder
            const bool tie = (t > 0 && ref_d[i * k + t - 1] == want) ||
                             (t + 1 < k && ref_d[i * k + t + 1] == want);
            EXPECT_TRUE(tie) << name << " q" << i << " rank " << t;
          }
        }
    }
  }
}

TEST(MergeTopk, KeepsTheKBestOfSortedParts) {
  const float d1[] = {1, 4, 9}, d2[] = {2, 3, INFINITY};
  const int64_t i1[] = {10, 40, 90}, i2[] = {20, 30, -1};
  float od[3];
  int64_t oi[3];
  merge_topk(3, false, {d1, d2}, {i1, i2}, od, oi);
  EXPECT_EQ(std::vector<int64_t>(oi, oi + 3), (std::vector<int64_t>{10, 20, 30}));
  EXPECT_EQ(std::vector<float>(od, od + 3), (std::vector<float>{1, 2, 3}));
}

}  // namespace
}  // namespace sf::stages
