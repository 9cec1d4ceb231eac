// Unit tests for stages/ivf_index.h: which factory strings make an index shardforge can
// shard and merge, the refusals (std::invalid_argument naming the string), find_ivf and
// set_nprobe.
#include "stages/ivf_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/InvertedLists.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace sf::stages {
namespace {

constexpr int kDim = 32;

class AcceptedFactory : public ::testing::TestWithParam<const char*> {};

TEST_P(AcceptedFactory, MakesAnIvfIndexWithSixteenLists) {
  const std::string factory = GetParam();
  for (bool inner_product : {false, true}) {
    SCOPED_TRACE(factory + (inner_product ? " (IP)" : " (L2)"));
    std::unique_ptr<faiss::Index> index;
    ASSERT_NO_THROW(index = make_ivf_index(kDim, factory, inner_product));
    ASSERT_NE(index, nullptr);
    EXPECT_EQ(index->d, kDim);
    EXPECT_EQ(index->metric_type, inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
    EXPECT_FALSE(index->is_trained);
    const faiss::IndexIVF* ivf = find_ivf(index.get());
    ASSERT_NE(ivf, nullptr);
    EXPECT_EQ(ivf->nlist, 16u);
    EXPECT_EQ(ivf->ntotal, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(IvfIndex, AcceptedFactory,
                         ::testing::Values("IVF16,Flat", "IVF16,PQ4np", "IVF16,SQ8",
                                           "PCA8,IVF16,Flat", "IVF16_HNSW32,Flat"));

class RefusedFactory : public ::testing::TestWithParam<const char*> {};

TEST_P(RefusedFactory, ThrowsInvalidArgumentNamingTheFactory) {
  const std::string factory = GetParam();
  try {
    make_ivf_index(kDim, factory, false);
    ADD_FAILURE() << "'" << factory << "' was accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + factory + "'"), std::string::npos)
        << "message does not name '" << factory << "': " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "'" << factory << "': expected std::invalid_argument, got: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(IvfIndex, RefusedFactory,
                         ::testing::Values("HNSW32", "Flat", "PQ8", "IVF16,PQ4x4fs",
                                           "IVF16,PQ4x4fsr", "not a factory", "IVF16,Bogus",
                                           "IVF,Flat", "IVF16,PQ5np"));

// What a build reports as a config error whatever the data (exit 2): FAISS makes the index but
// shardforge cannot shard it. What FAISS refuses for this d is not UnshardableFactory.
TEST(IvfIndex, UnshardableFactoryOnlyForStringsFaissMakes) {
  for (const std::string factory : {"HNSW32", "Flat", "PQ8", "IVF16,PQ4x4fs"})
    EXPECT_THROW(make_ivf_index(kDim, factory, false), UnshardableFactory) << factory;
  for (const std::string factory : {"IVF16,PQ5np", "not a factory", "IVF16,Bogus"}) {
    try {
      make_ivf_index(kDim, factory, false);
      ADD_FAILURE() << "'" << factory << "' was accepted";
    } catch (const UnshardableFactory&) {
      ADD_FAILURE() << "'" << factory << "': FAISS refuses it, it is not UnshardableFactory";
    } catch (const std::invalid_argument&) {
    }
  }
}

TEST(IvfIndex, PreTransformedIndexExposesTheIvfBehindIt) {
  auto index = make_ivf_index(kDim, "PCA8,IVF16,Flat", false);
  auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index.get());
  ASSERT_NE(pre, nullptr);
  faiss::IndexIVF* ivf = find_ivf(index.get());
  ASSERT_NE(ivf, nullptr);
  EXPECT_EQ(static_cast<const faiss::Index*>(ivf), pre->index);
  EXPECT_EQ(ivf->d, 8);
  const faiss::Index* const_index = index.get();
  EXPECT_EQ(find_ivf(const_index), ivf);
}

TEST(IvfIndex, FindIvfOfAFlatIndexIsNull) {
  faiss::IndexFlatL2 flat(kDim);
  EXPECT_EQ(find_ivf(&flat), nullptr);
  const faiss::Index* const_flat = &flat;
  EXPECT_EQ(find_ivf(const_flat), nullptr);
}

TEST(IvfIndex, SetNprobeReachesTheIvfInsideAPreTransform) {
  auto index = make_ivf_index(kDim, "PCA8,IVF16,Flat", false);
  set_nprobe(index.get(), 7);
  EXPECT_EQ(find_ivf(index.get())->nprobe, 7u);
  auto plain = make_ivf_index(kDim, "IVF16,SQ8", false);
  set_nprobe(plain.get(), 16);
  EXPECT_EQ(find_ivf(plain.get())->nprobe, 16u);
}

TEST(IvfIndex, SetNprobeOnANonIvfIndexThrows) {
  faiss::IndexFlatL2 flat(kDim);
  EXPECT_THROW(set_nprobe(&flat, 4), std::invalid_argument);
}

// The imbalance factor from list sizes is FAISS's own of lists holding that many entries.
TEST(IvfIndex, ListImbalanceIsFaisssImbalanceFactor) {
  const std::vector<int64_t> sizes = {3, 0, 5, 1, 7};
  faiss::ArrayInvertedLists lists(sizes.size(), 8);
  for (size_t l = 0; l < sizes.size(); ++l)
    for (int64_t i = 0; i < sizes[l]; ++i) {
      const uint8_t code[8] = {};
      lists.add_entry(l, i, code);
    }
  EXPECT_DOUBLE_EQ(list_imbalance(sizes), lists.imbalance_factor());
  EXPECT_GT(list_imbalance(sizes), 1.0);
  EXPECT_DOUBLE_EQ(list_imbalance({4, 4, 4}), 1.0);
  EXPECT_EQ(list_imbalance({0, 0}), 0.0);
  EXPECT_EQ(list_imbalance({}), 0.0);
}

}  // namespace
}  // namespace sf::stages
