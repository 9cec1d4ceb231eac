// MinHash: the permutations and values must be datasketch's, bit for bit, and the estimate
// must track the true Jaccard similarity.
#include "stages/dedup/minhash.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace sf::stages::dedup {
namespace {

// Expected values from numpy (datasketch's arithmetic), made with /usr/bin/python3:
//   g = np.random.RandomState(7); p = (1 << 61) - 1
//   a, b = np.array([(g.randint(1, p, dtype=np.uint64), g.randint(0, p, dtype=np.uint64))
//                    for _ in range(10)], dtype=np.uint64).T
//   hv = np.array([1, (1 << 63) + 5, 123456789012345, 2**64 - 1], dtype=np.uint64)
//   ((np.outer(hv, a) + b) % np.uint64(p) & np.uint64(0xffffffff)).min(axis=0)
TEST(MinHash, PermutationsAndValuesMatchDatasketchNumpy) {
  const MinHasher mh(10, 7);
  const std::vector<uint64_t> a = {1407639518939636933u, 1169693746941186260u, 1899821249326607546u,
                                   20668929189138778u,   340139256470221705u,  1000366761065432497u,
                                   109594561920622081u,  703662130126978055u,  1630422002828422848u,
                                   1036818128723030200u};
  const std::vector<uint64_t> b = {551904368352831990u,  1816361973745530471u, 710123494352685591u,
                                   1329108821600893482u, 2303675491809990630u, 991310334879981959u,
                                   1216310873990163255u, 638137941648739772u,  1422685883315097400u,
                                   459309668489100400u};
  for (int j = 0; j < 10; ++j) {
    EXPECT_EQ(mh.a()[j], a[j]) << "a[" << j << "]";
    EXPECT_EQ(mh.b()[j], b[j]) << "b[" << j << "]";
  }
  const std::vector<uint64_t> hashes = {1, (uint64_t{1} << 63) + 5, 123456789012345u, UINT64_MAX};
  const std::vector<uint32_t> expected = {393561400, 784111266, 2456221394, 1428629712, 2198398045,
                                          857450296, 288934200, 93262268,   298477566,  57322792};
  std::vector<uint32_t> sig(10);
  mh.signature(hashes.data(), hashes.size(), sig.data());
  EXPECT_EQ(sig, expected);
}

// The kernel against a scalar reference, for a width that is not a multiple of 8.
TEST(MinHash, KernelMatchesScalarReference) {
  const int perms = 37;
  const MinHasher mh(perms, 1);
  std::mt19937_64 rng(3);
  std::vector<uint64_t> hashes(1000);
  for (auto& h : hashes) h = rng();
  std::vector<uint32_t> sig(perms);
  mh.signature(hashes.data(), hashes.size(), sig.data());
  const unsigned __int128 p = (uint64_t{1} << 61) - 1;
  for (int j = 0; j < perms; ++j) {
    uint32_t best = 0xffffffffu;
    for (uint64_t h : hashes) {
      const uint64_t v = mh.a()[j] * h + mh.b()[j];  // wraps mod 2^64, as numpy's uint64
      best = std::min<uint32_t>(best, static_cast<uint32_t>(static_cast<uint64_t>(v % p)));
    }
    EXPECT_EQ(sig[j], best) << "permutation " << j;
  }
  std::vector<uint32_t> empty(perms);
  mh.signature(nullptr, 0, empty.data());
  for (uint32_t v : empty) EXPECT_EQ(v, 0xffffffffu);
}

TEST(MinHash, EstimateTracksJaccard) {
  const int perms = 256;
  const MinHasher mh(perms, 1);
  std::mt19937_64 rng(5);
  for (double target : {0.2, 0.5, 0.8, 0.95}) {
    // |A| = |B| = 1000, |A n B| = k, J = k / (2000 - k).
    const int k = static_cast<int>(std::lround(2000 * target / (1 + target)));
    std::vector<uint64_t> common(k), a, b;
    for (auto& h : common) h = rng();
    a = b = common;
    for (int i = k; i < 1000; ++i) a.push_back(rng()), b.push_back(rng());
    std::vector<uint32_t> sa(perms), sb(perms);
    mh.signature(a.data(), a.size(), sa.data());
    mh.signature(b.data(), b.size(), sb.data());
    const double truth = static_cast<double>(k) / (2000 - k);
    EXPECT_NEAR(estimated_jaccard(sa.data(), sb.data(), perms), truth, 0.1) << "J=" << truth;
  }
}

}  // namespace
}  // namespace sf::stages::dedup
